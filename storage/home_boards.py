"""Stale Home boards: marked by the changes that make them stale, claimed by one refresher at a time.

A change shown on the board inserts a row (`mark_stale`) in its own transaction: committed with the
change, and insert-only, so concurrent commands never queue on a shared row for it.

The refresher, in one transaction, claims the interval (`claim_refresh`: an update of the one
`home_refresh` row that matches only once the interval has passed, so a second process finds nothing
to do), takes the marks (`take_marks`) and enqueues the boards. Taking the marks is a DELETE that runs
before any board is read: it removes only marks committed before it began, whose changes every later
read therefore sees; a change committing meanwhile keeps its mark for the next refresh. If the
refresher dies before committing, the marks and the claim roll back and the next one does the work.

On SQLite (one writer for everyone) the boards are read first, from a snapshot taken inside an
instant of the writer's turn, and only the claim (`claim_refresh_after`: no other refresh since that
snapshot), the marks the snapshot saw (`take_marks(up_to=…)`) and the queued boards are a write
transaction. A mark committed after the snapshot has a higher id (SQLite numbers rows in the writer's
turn, after the highest), so it stays for the next refresh.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from storage.lean import Statements
from storage.models import HomeBoardChange, HomeRefresh

_STATE_ID = 1


def mark_stale(session: Session, now: datetime) -> None:
    """One INSERT, in the caller's transaction (a plain statement, sent with the next one: most
    commands run it)."""
    sql = Statements(session)
    sql.later("INSERT INTO home_board_change (changed_at) VALUES (?)", (sql.when(now),))


def is_stale(session: Session) -> bool:
    return session.execute(select(col(HomeBoardChange.id)).limit(1)).first() is not None


def claim_refresh(session: Session, now: datetime, interval: timedelta) -> bool:
    """Whether this transaction may refresh now: no refresh in the last `interval`, and no other
    process refreshing (on PostgreSQL a concurrent claim waits for this one, then finds it too recent)."""
    return _claim_after_interval(session, now, interval) or _claim_first(session, now)


def claim_refresh_after(
    session: Session, now: datetime, interval: timedelta, last_seen: datetime | None
) -> bool:
    """`claim_refresh` for a refresher that read a snapshot first (`last_seen`: the last refresh as
    that snapshot saw it). It also fails if another refresh ran after the snapshot: that one took
    the marks it found, and a mark added since may carry an id the snapshot's marks had (SQLite
    reuses the ids of deleted rows), which `take_marks(up_to=…)` would then take unseen."""
    if last_seen is None:
        return _claim_first(session, now)
    return _claim_after_interval(session, now, interval, col(HomeRefresh.refreshed_at) == last_seen)


def _claim_after_interval(session: Session, now: datetime, interval: timedelta, *conditions: Any) -> bool:
    """Move the last refresh to `now` if it is at least `interval` old (and `conditions` hold)."""
    claimed = session.execute(
        update(HomeRefresh)
        .where(col(HomeRefresh.id) == _STATE_ID, col(HomeRefresh.refreshed_at) <= now - interval, *conditions)
        .values(refreshed_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(claimed.rowcount)  # type: ignore[attr-defined]


def _claim_first(session: Session, now: datetime) -> bool:
    """The very first refresh inserts the claim row; False if it exists (another refresh ran)."""
    if session.get(HomeRefresh, _STATE_ID) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(HomeRefresh(id=_STATE_ID, refreshed_at=now))
    except IntegrityError:
        return False
    return True


def take_marks(session: Session, up_to: int | None = None) -> int:
    """Delete the marks committed so far (with `up_to`: those a snapshot saw, ids up to it); returns
    how many (0: another refresher took them)."""
    statement = delete(HomeBoardChange)
    if up_to is not None:
        statement = statement.where(col(HomeBoardChange.id) <= up_to)
    result = session.execute(statement)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def latest_mark(session: Session) -> int | None:
    """The newest mark's id; None when no board is stale."""
    return session.execute(select(func.max(col(HomeBoardChange.id)))).scalar_one_or_none()


def last_refresh(session: Session) -> datetime | None:
    state = session.get(HomeRefresh, _STATE_ID)
    return None if state is None else state.refreshed_at
