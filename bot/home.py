"""The App Home tab: each user's live board, published when they open it, and refreshed (through the
outbox) for the people who opened it recently, by a background job, at most once per interval, after
changes that show on it (a command only marks the boards stale: storage.home_boards)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from bot.runtime import Runtime
from commands.common import CommandConfig
from commands.home import SharedBoard, board_view, gather_board, gather_shared
from storage import digests, home_boards, outbox
from storage.db import Database

log = logging.getLogger(__name__)

RECENT_VISIT = timedelta(hours=8)  # a board nobody looked at since is refreshed when next opened
MAX_REFRESHES = 25  # per refresh; the outbox coalesces a user's pending publishes


def publish(runtime: Runtime, user_id: str) -> None:
    if not user_id:
        return
    now = runtime.clock.now()
    with runtime.db.request_session() as session:  # in the request: fail fast when busy
        digests.record_home_visit(session, user_id, now)
        enqueue_board(session, runtime.config, user_id, now)
    runtime.outbox.wake()


def board_for(
    session: Session, config: CommandConfig, user_id: str, now: datetime, shared: SharedBoard | None = None
) -> dict[str, Any]:
    return board_view(gather_board(session, config, user_id, now, shared), config)


def enqueue_board(
    session: Session, config: CommandConfig, user_id: str, now: datetime, shared: SharedBoard | None = None
) -> None:
    outbox.publish_home(session, user_id, board_for(session, config, user_id, now, shared), now=now)


def mark_stale(session: Session, now: datetime) -> None:
    """Something on the board changed, in this transaction: the refresher will pick it up."""
    home_boards.mark_stale(session, now)


def refresh_if_stale(db: Database, config: CommandConfig, now: datetime, interval: timedelta) -> int:
    """If boards are stale and no refresh ran in the last `interval` (in any process): re-publish
    recent visitors' boards, taking the stale marks in the same transaction. Returns boards queued."""
    if db.one_writer:
        return _refresh_from_snapshot(db, config, now, interval)
    with db.session() as session:
        if not home_boards.is_stale(session) or not home_boards.claim_refresh(session, now, interval):
            return 0
        if not home_boards.take_marks(session):
            return 0
        return refresh_recent(session, config, now)


def _refresh_from_snapshot(db: Database, config: CommandConfig, now: datetime, interval: timedelta) -> int:
    """`refresh_if_stale` where writers take turns (SQLite): the boards are built from a snapshot,
    and only claiming, taking the marks that snapshot saw and queueing the boards hold the turn
    (building 25 boards in it held every command back ~60 ms, each interval while commands flow)."""
    with db.read_session() as session:
        seen, last = home_boards.latest_mark(session), home_boards.last_refresh(session)
        if seen is None or (last is not None and last > now - interval):
            return 0
        views = recent_boards(session, config, now)
    with db.session() as session:
        if not home_boards.claim_refresh_after(session, now, interval, last):
            return 0
        if not home_boards.take_marks(session, up_to=seen):
            return 0
        outbox.publish_homes(session, views, now=now)
        return len(views)


def refresh_recent(session: Session, config: CommandConfig, now: datetime) -> int:
    """Re-publish the boards of those who opened Home recently; in the caller's transaction."""
    views = recent_boards(session, config, now)
    outbox.publish_homes(session, views, now=now)
    return len(views)


def recent_boards(session: Session, config: CommandConfig, now: datetime) -> dict[str, dict[str, Any]]:
    """The boards of those who opened Home recently (user id → view). One board that cannot be
    built is logged and skipped: it must not hold back everyone else's."""
    users = digests.recent_home_visitors(session, now - RECENT_VISIT, MAX_REFRESHES)
    if not users:
        return {}
    shared = gather_shared(session, config)
    views: dict[str, dict[str, Any]] = {}
    for user_id in users:
        try:
            with session.begin_nested():  # a database error in one board spoils none of the others
                views[user_id] = board_for(session, config, user_id, now, shared)
        except Exception:
            log.exception("could not refresh the Home board of %s; it refreshes when next opened", user_id)
    return views
