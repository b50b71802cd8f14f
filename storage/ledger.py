"""Queries over the movement and pledge ledgers. Totals are SQL aggregates, never Python loops over rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Integer, Select, case, func, select
from sqlmodel import Session, col

from storage.models import Movement, MovementKind, Pledge

UNSPECIFIED = None  # the capability bucket of personnel recorded without one


@dataclass
class Bucket:
    """One capability of one country (or a total)."""

    pledged: int = 0
    arrived: int = 0
    departed: int = 0

    @property
    def on_duty(self) -> int:
        return self.arrived - self.departed

    @property
    def fill_rate(self) -> float | None:
        return None if self.pledged <= 0 else self.on_duty / self.pledged

    @property
    def gap(self) -> int:
        return max(self.pledged - self.on_duty, 0)

    def add(self, other: Bucket) -> None:
        self.pledged += other.pledged
        self.arrived += other.arrived
        self.departed += other.departed


@dataclass
class CountryStatus:
    country: str
    by_capability: dict[str | None, Bucket] = field(default_factory=dict)

    @property
    def total(self) -> Bucket:
        total = Bucket()
        for bucket in self.by_capability.values():
            total.add(bucket)
        return total

    def bucket(self, capability: str | None) -> Bucket:
        return self.by_capability.setdefault(capability, Bucket())


def deployment_status(session: Session, country: str | None = None) -> dict[str, CountryStatus]:
    """Pledged, arrived and departed per country and capability, from two grouped queries."""
    statuses: dict[str, CountryStatus] = {}

    def status_of(code: str) -> CountryStatus:
        return statuses.setdefault(code, CountryStatus(code))

    arrived = func.sum(case((col(Movement.kind) == MovementKind.ARRIVAL, col(Movement.count)), else_=0))
    departed = func.sum(case((col(Movement.kind) == MovementKind.DEPARTURE, col(Movement.count)), else_=0))
    movements = select(col(Movement.country), col(Movement.capability), arrived, departed).group_by(
        col(Movement.country), col(Movement.capability)
    )
    if country is not None:
        movements = movements.where(col(Movement.country) == country)
    for code, capability, arrived_sum, departed_sum in session.execute(movements):
        bucket = status_of(code).bucket(capability)
        bucket.arrived = int(arrived_sum or 0)
        bucket.departed = int(departed_sum or 0)

    for code, capability, headcount in session.execute(_current_pledges(country)):
        status_of(code).bucket(capability).pledged = int(headcount)
    return statuses


def _current_pledges(country: str | None) -> Select[str, str | None, int]:
    latest = select(func.max(col(Pledge.id)).label("id")).group_by(
        col(Pledge.country), col(Pledge.capability)
    )
    if country is not None:
        latest = latest.where(col(Pledge.country) == country)
    latest_ids = latest.subquery()
    return select(col(Pledge.country), col(Pledge.capability), col(Pledge.headcount)).join(
        latest_ids, col(Pledge.id) == latest_ids.c.id
    )


def previous_headcount(session: Session, pledge: Pledge) -> int | None:
    """What the same country and capability had pledged before this pledge row, if anything."""
    capability = col(Pledge.capability)
    query = (
        select(col(Pledge.headcount))
        .where(
            col(Pledge.country) == pledge.country,
            capability.is_(None) if pledge.capability is None else capability == pledge.capability,
            col(Pledge.id) < pledge.id,
        )
        .order_by(col(Pledge.id).desc())
        .limit(1)
    )
    return session.execute(query).scalar_one_or_none()


def on_duty(session: Session, country: str, capability: str | None) -> int:
    signed = case(
        (col(Movement.kind) == MovementKind.ARRIVAL, col(Movement.count)), else_=-col(Movement.count)
    )
    query = select(func.coalesce(func.sum(signed), 0, type_=Integer)).where(
        col(Movement.country) == country,
        col(Movement.capability).is_(None) if capability is None else col(Movement.capability) == capability,
    )
    return int(session.execute(query).scalar_one())


def current_pledge(session: Session, country: str, capability: str | None) -> Pledge | None:
    query = (
        select(Pledge)
        .where(
            col(Pledge.country) == country,
            col(Pledge.capability).is_(None) if capability is None else col(Pledge.capability) == capability,
        )
        .order_by(col(Pledge.id).desc())
        .limit(1)
    )
    return session.execute(query).scalars().first()


def movements_since(session: Session, since: datetime, limit: int) -> Sequence[Movement]:
    query = (
        select(Movement)
        .where(col(Movement.created_at) >= since)
        .order_by(col(Movement.id).desc())
        .limit(limit)
    )
    return session.execute(query).scalars().all()


def count_movements_since(session: Session, since: datetime) -> int:
    query = select(func.count()).select_from(Movement).where(col(Movement.created_at) >= since)
    return int(session.execute(query).scalar_one())


def last_entry_by(session: Session, user_id: str, kind: MovementKind) -> Movement | None:
    """The caller's latest own entry of that kind (compensating rows are not entries)."""
    query = (
        select(Movement)
        .where(
            col(Movement.recorded_by) == user_id,
            col(Movement.kind) == kind,
            col(Movement.reverses_id).is_(None),
        )
        .order_by(col(Movement.id).desc())
        .limit(1)
    )
    return session.execute(query).scalars().first()


def reversal_of(session: Session, movement_id: int) -> Movement | None:
    query = select(Movement).where(col(Movement.reverses_id) == movement_id)
    return session.execute(query).scalars().first()
