"""Incidents and their timelines: lookups, the row lock, and the escalation timers' claims."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from sqlalchemy import or_, select, update
from sqlmodel import Session, col

from storage.models import (
    ChannelLink,
    Incident,
    IncidentEvent,
    IncidentStatus,
    LiaisonAssignment,
    Pledge,
)

MAX_LISTED = 40


class Timer(StrEnum):
    OWNER = "owner"  # a sev1/sev2 incident with no owner
    UPDATE = "update"  # a sev1/sev2 incident with no update


def get(session: Session, incident_id: int) -> Incident | None:
    return session.get(Incident, incident_id)


def lock(session: Session, incident_id: int) -> Incident | None:
    """The incident, locked until the transaction ends: concurrent changes are applied one after
    the other (PostgreSQL row lock; SQLite transactions already hold the write lock)."""
    query = select(Incident).where(col(Incident.id) == incident_id).execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.execute(query).scalars().first()


def add_event(
    session: Session, incident: Incident, *, kind: str, actor: str, text: str, now: datetime
) -> IncidentEvent:
    assert incident.id is not None
    event = IncidentEvent(incident_id=incident.id, kind=kind, actor=actor, text=text, created_at=now)
    session.add(event)
    session.flush()
    return event


def timeline(session: Session, incident_id: int) -> Sequence[IncidentEvent]:
    query = (
        select(IncidentEvent)
        .where(col(IncidentEvent.incident_id) == incident_id)
        .order_by(col(IncidentEvent.id))
    )
    return session.execute(query).scalars().all()


def open_incidents(session: Session) -> list[Incident]:
    """Incidents not resolved yet, most severe first, then oldest first (for digests and lists)."""
    query = (
        select(Incident)
        .where(col(Incident.status) != IncidentStatus.RESOLVED)
        .order_by(col(Incident.severity), col(Incident.opened_at), col(Incident.id))
    )
    return list(session.execute(query).scalars().all())


def listing(
    session: Session,
    *,
    owner: str | None = None,
    severity: int | None = None,
    include_resolved: bool = False,
    limit: int = MAX_LISTED,
) -> tuple[list[Incident], int]:
    """The incidents asked for, most severe then oldest first, and how many there are in all."""
    query = select(Incident)
    if not include_resolved:
        query = query.where(col(Incident.status) != IncidentStatus.RESOLVED)
    if owner is not None:
        query = query.where(col(Incident.owner) == owner)
    if severity is not None:
        query = query.where(col(Incident.severity) == severity)
    if include_resolved:  # open ones first, then the most recently opened
        query = query.order_by(
            col(Incident.resolved_at).is_not(None), col(Incident.severity), col(Incident.id).desc()
        )
    else:
        query = query.order_by(col(Incident.severity), col(Incident.opened_at), col(Incident.id))
    rows = list(session.execute(query).scalars().all())
    return rows[:limit], len(rows)


def due_timers(session: Session, now: datetime) -> list[tuple[Incident, Timer]]:
    """Incidents with a timer that has lapsed by `now`."""
    query = (
        select(Incident)
        .where(
            col(Incident.status) != IncidentStatus.RESOLVED,
            or_(col(Incident.owner_due_at) <= now, col(Incident.update_due_at) <= now),
        )
        .order_by(col(Incident.severity), col(Incident.id))
    )
    due: list[tuple[Incident, Timer]] = []
    for incident in session.execute(query).scalars().all():
        if incident.owner_due_at is not None and incident.owner_due_at <= now:
            due.append((incident, Timer.OWNER))
        if incident.update_due_at is not None and incident.update_due_at <= now:
            due.append((incident, Timer.UPDATE))
    return due


def claim_timer(
    session: Session, incident_id: int, timer: Timer, *, seen: datetime, next_due: datetime
) -> bool:
    """Move a lapsed timer to its next lapse; True only for the one process that did it.

    Compare-and-set on the due time: a second process (or a change committed meanwhile, which
    resets or clears the timer) finds the value changed and updates nothing.
    """
    name = "owner_due_at" if timer is Timer.OWNER else "update_due_at"
    column = col(Incident.owner_due_at) if timer is Timer.OWNER else col(Incident.update_due_at)
    result = session.execute(
        update(Incident)
        .where(col(Incident.id) == incident_id, column == seen)
        .values({name: next_due})
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def country_choices(session: Session) -> list[str]:
    """Countries Liaison knows as contributing (a pledge, a liaison or a channel), for pick lists."""
    codes: set[str] = set()
    for table in (ChannelLink, LiaisonAssignment, Pledge):
        codes |= set(session.execute(select(col(table.country)).distinct()).scalars().all())
    return sorted(codes)


def set_card_permalink(session: Session, incident_id: int, permalink: str) -> None:
    """Remember the card's permalink (does not change the incident's version)."""
    session.execute(
        update(Incident)
        .where(col(Incident.id) == incident_id, col(Incident.card_permalink).is_(None))
        .values(card_permalink=permalink)
        .execution_options(synchronize_session=False)
    )
