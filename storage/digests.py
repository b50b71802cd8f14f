"""Digest subscriptions, their daily runs, and the aggregates a digest reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlalchemy import Select, case, func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from storage import ledger
from storage.models import (
    DeploymentTotal,
    DigestRun,
    DigestRunStatus,
    DigestSubscription,
    HomeVisit,
    Movement,
    MovementKind,
    Pledge,
)

# -- subscriptions --------------------------------------------------------------------------------


def subscription_of(session: Session, channel_id: str) -> DigestSubscription | None:
    query = select(DigestSubscription).where(col(DigestSubscription.channel_id) == channel_id)
    return session.execute(query).scalars().first()


def active_subscriptions(session: Session) -> Sequence[DigestSubscription]:
    query = (
        select(DigestSubscription)
        .where(col(DigestSubscription.active).is_(True))
        .order_by(col(DigestSubscription.local_time), col(DigestSubscription.id))
    )
    return session.execute(query).scalars().all()


# -- runs -----------------------------------------------------------------------------------------


def run_for(session: Session, subscription_id: int, local_date: str) -> DigestRun | None:
    query = select(DigestRun).where(
        col(DigestRun.subscription_id) == subscription_id, col(DigestRun.local_date) == local_date
    )
    return session.execute(query).scalars().first()


def runs_on(session: Session, local_dates: Sequence[str]) -> set[tuple[int, str]]:
    """(subscription, date) pairs that already have a run on those dates."""
    query = select(col(DigestRun.subscription_id), col(DigestRun.local_date)).where(
        col(DigestRun.local_date).in_(list(local_dates))
    )
    return {(int(sub), str(day)) for sub, day in session.execute(query)}


def claim_run(session: Session, run: DigestRun) -> bool:
    """Insert the run row; False if another process (or an earlier pass) already holds that day.

    On PostgreSQL a concurrent insert of the same key waits for the other transaction and then fails,
    so the loser never enqueues anything.
    """
    try:
        with session.begin_nested():
            session.add(run)
    except IntegrityError:
        return False
    return True


def last_sent_run(session: Session, subscription_id: int) -> DigestRun | None:
    query = (
        select(DigestRun)
        .where(
            col(DigestRun.subscription_id) == subscription_id, col(DigestRun.status) == DigestRunStatus.SENT
        )
        .order_by(col(DigestRun.due_at).desc())
        .limit(1)
    )
    return session.execute(query).scalars().first()


def runs_of(session: Session, subscription_id: int) -> Sequence[DigestRun]:
    query = (
        select(DigestRun)
        .where(col(DigestRun.subscription_id) == subscription_id)
        .order_by(col(DigestRun.local_date))
    )
    return session.execute(query).scalars().all()


# -- what a digest reads --------------------------------------------------------------------------


@dataclass(frozen=True)
class MovementTotals:
    arrived: int = 0
    departed: int = 0
    entries: int = 0


def movement_totals_between(
    session: Session, since: datetime, until: datetime, country: str | None = None
) -> dict[str, MovementTotals]:
    """Arrivals and departures per country recorded in [since, until) (undo rows count negatively)."""
    arrived = func.sum(case((col(Movement.kind) == MovementKind.ARRIVAL, col(Movement.count)), else_=0))
    departed = func.sum(case((col(Movement.kind) == MovementKind.DEPARTURE, col(Movement.count)), else_=0))
    query = (
        select(col(Movement.country), arrived, departed, func.count())
        .where(col(Movement.created_at) >= since, col(Movement.created_at) < until)
        .group_by(col(Movement.country))
    )
    if country is not None:
        query = query.where(col(Movement.country) == country)
    return {
        code: MovementTotals(int(a or 0), int(d or 0), int(n)) for code, a, d, n in session.execute(query)
    }


@dataclass(frozen=True)
class PledgeChange:
    country: str
    capability: str | None
    before: int | None
    after: int
    at: datetime
    by: str


def pledge_changes_between(
    session: Session, since: datetime, until: datetime, country: str | None = None, limit: int = 200
) -> list[PledgeChange]:
    query = (
        select(Pledge)
        .where(col(Pledge.created_at) >= since, col(Pledge.created_at) < until)
        .order_by(col(Pledge.id))
        .limit(limit)
    )
    if country is not None:
        query = query.where(col(Pledge.country) == country)
    changes: list[PledgeChange] = []
    for pledge in session.execute(query).scalars().all():
        changes.append(
            PledgeChange(
                pledge.country,
                pledge.capability,
                ledger.previous_headcount(session, pledge),
                pledge.headcount,
                pledge.created_at,
                pledge.recorded_by,
            )
        )
    return changes


def last_movement_at(session: Session) -> dict[str, datetime]:
    """When each country last had a movement recorded (MAX keeps the column's UTC type).

    One index seek per country (ix_movement_country_created) rather than a pass over the whole
    ledger: the countries are those of the running totals, which hold every country with a ledger
    row (kept in the same transaction as each row)."""
    return {code: moment for code, moment in session.execute(_last_movement_query()) if moment is not None}


@cache
def _last_movement_query() -> Select[str, datetime | None]:
    """Built once (it has no parameters): built per call, its subquery left ~30 objects in reference
    cycles for the garbage collector (tests/test_garbage.py)."""
    countries = select(col(DeploymentTotal.country)).distinct().subquery()
    latest = (
        select(func.max(col(Movement.created_at)))
        .where(col(Movement.country) == countries.c.country)
        .scalar_subquery()
    )
    return select(countries.c.country, latest)


def arrivals_between(session: Session, since: datetime, until: datetime, country: str | None = None) -> int:
    """Net arrivals in [since, until): arrivals minus their undo rows."""
    query = select(func.coalesce(func.sum(col(Movement.count)), 0)).where(
        col(Movement.kind) == MovementKind.ARRIVAL,
        col(Movement.created_at) >= since,
        col(Movement.created_at) < until,
    )
    if country is not None:
        query = query.where(col(Movement.country) == country)
    return int(session.execute(query).scalar_one())


# -- Home visits ------------------------------------------------------------------------------------


def record_home_visit(session: Session, user_id: str, now: datetime) -> None:
    visit = session.get(HomeVisit, user_id)
    if visit is None:
        try:
            with session.begin_nested():
                session.add(HomeVisit(user_id=user_id, opened_at=now))
            return
        except IntegrityError:
            visit = session.get(HomeVisit, user_id)
            assert visit is not None
    visit.opened_at = now
    session.add(visit)


def recent_home_visitors(session: Session, since: datetime, limit: int) -> list[str]:
    query = (
        select(col(HomeVisit.user_id))
        .where(col(HomeVisit.opened_at) >= since)
        .order_by(col(HomeVisit.opened_at).desc())
        .limit(limit)
    )
    return list(session.execute(query).scalars().all())
