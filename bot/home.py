"""The App Home tab: each user's live board, published when they open it and refreshed (through the
outbox) after changes that show on it, for the people who opened it recently."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from bot.runtime import Runtime
from commands.common import CommandConfig
from commands.home import SharedBoard, board_view, gather_board, gather_shared
from storage import digests, outbox

RECENT_VISIT = timedelta(hours=8)  # a board nobody looked at since is refreshed when next opened
MAX_REFRESHES = 25  # per change; the outbox coalesces a user's pending publishes


def publish(runtime: Runtime, user_id: str) -> None:
    if not user_id:
        return
    now = runtime.clock.now()
    with runtime.db.request_session() as session:  # in the request: fail fast when busy
        digests.record_home_visit(session, user_id, now)
        enqueue_board(session, runtime.config, user_id, now)
    runtime.outbox.wake()


def enqueue_board(
    session: Session, config: CommandConfig, user_id: str, now: datetime, shared: SharedBoard | None = None
) -> None:
    view = board_view(gather_board(session, config, user_id, now, shared), config)
    outbox.publish_home(session, user_id, view, now=now)


def refresh_recent(session: Session, config: CommandConfig, now: datetime) -> int:
    """Re-publish the boards of those who opened Home recently; in the caller's transaction."""
    users = digests.recent_home_visitors(session, now - RECENT_VISIT, MAX_REFRESHES)
    if users:
        shared = gather_shared(session, config)
        for user_id in users:
            enqueue_board(session, config, user_id, now, shared)
    return len(users)
