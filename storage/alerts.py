"""Alert notices, their deliveries to liaison channels, and acknowledgements."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from storage.models import Acknowledgement, AlertNotice, NoticeDelivery, OutboxMessage


def current_notice(session: Session) -> AlertNotice | None:
    query = select(AlertNotice).order_by(col(AlertNotice.id).desc()).limit(1)
    return session.execute(query).scalars().first()


def notice(session: Session, notice_id: int) -> AlertNotice | None:
    return session.get(AlertNotice, notice_id)


def deliveries(session: Session, notice_id: int, country: str | None = None) -> Sequence[NoticeDelivery]:
    query = select(NoticeDelivery).where(col(NoticeDelivery.notice_id) == notice_id)
    if country is not None:
        query = query.where(col(NoticeDelivery.country) == country)
    return (
        session.execute(query.order_by(col(NoticeDelivery.country), col(NoticeDelivery.id))).scalars().all()
    )


def deliveries_with_messages(
    session: Session, notice_id: int, country: str | None = None
) -> list[tuple[NoticeDelivery, OutboxMessage]]:
    """Each delivery of the notice with the outbox message that carried it, in one query."""
    query = (
        select(NoticeDelivery, OutboxMessage)
        .join(OutboxMessage, col(OutboxMessage.id) == col(NoticeDelivery.message_id))
        .where(col(NoticeDelivery.notice_id) == notice_id)
    )
    if country is not None:
        query = query.where(col(NoticeDelivery.country) == country)
    rows = session.execute(query.order_by(col(NoticeDelivery.country), col(NoticeDelivery.id))).all()
    return [(delivery, message) for delivery, message in rows]


def acknowledgements(session: Session, notice_id: int) -> dict[str, Acknowledgement]:
    query = select(Acknowledgement).where(col(Acknowledgement.notice_id) == notice_id)
    return {ack.country: ack for ack in session.execute(query).scalars().all()}


def acknowledgement_count(session: Session, notice_id: int) -> int:
    query = (
        select(func.count()).select_from(Acknowledgement).where(col(Acknowledgement.notice_id) == notice_id)
    )
    return int(session.execute(query).scalar_one())


def acknowledge(
    session: Session,
    *,
    notice_id: int,
    country: str,
    user_id: str,
    channel_id: str,
    now: datetime,
    on_behalf: bool = False,
) -> tuple[Acknowledgement, bool]:
    """Record the country's acknowledgement; (the acknowledgement, whether it is new).

    Two liaisons clicking at once: the unique (notice, country) constraint lets exactly one insert win.
    """
    ack = Acknowledgement(
        notice_id=notice_id,
        country=country,
        user_id=user_id,
        channel_id=channel_id,
        created_at=now,
        on_behalf=on_behalf,
    )
    try:
        with session.begin_nested():
            session.add(ack)
    except IntegrityError:
        existing = session.execute(
            select(Acknowledgement).where(
                col(Acknowledgement.notice_id) == notice_id, col(Acknowledgement.country) == country
            )
        ).scalar_one()
        return existing, False
    return ack, True


def claim_reminder(session: Session, delivery_id: int, now: datetime) -> bool:
    """Mark a delivery reminded; True only for the one process that did it (several may run)."""
    result = session.execute(
        update(NoticeDelivery)
        .where(col(NoticeDelivery.id) == delivery_id, col(NoticeDelivery.reminded_at).is_(None))
        .values(reminded_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def claim_escalation(session: Session, delivery_id: int, now: datetime) -> bool:
    result = session.execute(
        update(NoticeDelivery)
        .where(col(NoticeDelivery.id) == delivery_id, col(NoticeDelivery.escalated_at).is_(None))
        .values(escalated_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
