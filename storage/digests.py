"""Digest subscriptions, their daily runs, and the aggregates a digest reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Select, TextClause, case, func, select, text
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


@dataclass(frozen=True)
class Window:
    """Which ledger rows a digest's "since" sections report; each row is in exactly one digest.

    SQLite: the rows timed in [since, until); the next digest starts at this one's `until`. A report's
    snapshot is taken in a turn of the single writer, where every row timed before it is committed
    (storage.db.Database.read_session), so no row timed in a window commits after it was read.

    PostgreSQL: commands commit concurrently, and a row timed before a digest's moment may commit after
    its snapshot. So a digest reports the rows its snapshot sees from `since` on (no upper bound: what
    it sees, it reports) and stores that snapshot; the next one reports the rows its own snapshot sees
    and that one did not (`after_snapshot`, by transaction id: commit order, not time).
    """

    since: datetime
    until: datetime
    after_snapshot: str | None = None


# Built once, their values bound when they run (see _committed_after).
_CURRENT_SNAPSHOT = text("SELECT pg_current_snapshot()::text")
_NOT_AHEAD = text(
    "SELECT pg_snapshot_xmax(CAST(:snapshot AS pg_snapshot)) <= pg_snapshot_xmax(pg_current_snapshot())"
)

# Longer than any transaction can stay open: a row committed after a snapshot was timed at most this
# long before it. Only narrows the rows the snapshot test looks at (to those an index finds).
LONGEST_TRANSACTION = timedelta(days=1)


def current_snapshot(session: Session) -> str | None:
    """The snapshot this (REPEATABLE READ) transaction reads, as `pg_snapshot` text; None on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    return str(session.execute(_CURRENT_SNAPSHOT).scalar_one())


def since_run(session: Session, previous: DigestRun, until: datetime) -> Window:
    """The window of a digest that follows `previous`: by commit order where its snapshot can be used."""
    after = previous.snapshot
    if after is not None and not _from_this_history(session, after):
        after = None  # stored before the database was restored elsewhere: by time, this once
    return Window(previous.claimed_at, until, after)


def _from_this_history(session: Session, snapshot: str) -> bool:
    """False for a snapshot "from the future": a dump restored into another cluster (whose
    transaction ids start over) keeps the stored snapshots but not their meaning."""
    return bool(session.execute(_NOT_AHEAD, {"snapshot": snapshot}).scalar_one())


def _in_window(session: Session, table: str, created_at: Any, window: Window) -> list[ColumnElement[bool]]:
    """The conditions; a snapshot is bound when the query runs (`_window_parameters`)."""
    if session.get_bind().dialect.name != "postgresql":
        return [created_at >= window.since, created_at < window.until]
    if window.after_snapshot is None:
        return [created_at >= window.since]
    return [created_at >= window.since - LONGEST_TRANSACTION, _committed_after(table)]


def _window_parameters(window: Window) -> dict[str, str]:
    return {} if window.after_snapshot is None else {"after_snapshot": window.after_snapshot}


@cache
def _committed_after(table: str) -> TextClause:
    """Built once per table, its snapshot bound when the query runs: bound into the clause
    (`.bindparams`), each preview left ~24 objects in reference cycles (tests/test_garbage.py)."""
    return text(
        f"{table}.txid >= pg_snapshot_xmin(CAST(:after_snapshot AS pg_snapshot)) "
        f"AND NOT pg_visible_in_snapshot({table}.txid, CAST(:after_snapshot AS pg_snapshot))"
    )


def movement_totals_between(
    session: Session, window: Window, country: str | None = None
) -> dict[str, MovementTotals]:
    """Arrivals and departures per country recorded in the window (undo rows count negatively)."""
    arrived = func.sum(case((col(Movement.kind) == MovementKind.ARRIVAL, col(Movement.count)), else_=0))
    departed = func.sum(case((col(Movement.kind) == MovementKind.DEPARTURE, col(Movement.count)), else_=0))
    query = (
        select(col(Movement.country), arrived, departed, func.count())
        .where(*_in_window(session, "movement", col(Movement.created_at), window))
        .group_by(col(Movement.country))
    )
    if country is not None:
        query = query.where(col(Movement.country) == country)
    return {
        code: MovementTotals(int(a or 0), int(d or 0), int(n))
        for code, a, d, n in session.execute(query, _window_parameters(window))
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
    session: Session, window: Window, country: str | None = None, limit: int = 200
) -> list[PledgeChange]:
    query = (
        select(Pledge)
        .where(*_in_window(session, "pledge", col(Pledge.created_at), window))
        .order_by(col(Pledge.id))
        .limit(limit)
    )
    if country is not None:
        query = query.where(col(Pledge.country) == country)
    changes: list[PledgeChange] = []
    for pledge in session.execute(query, _window_parameters(window)).scalars().all():
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
