"""The App Home tab: the overall deployment picture, refreshed each time a user opens it."""

from __future__ import annotations

from bot.runtime import Runtime
from commands.deployment import overview_reply
from commands.home import home_view
from storage import outbox, totals


def publish(runtime: Runtime, user_id: str) -> None:
    if not user_id:
        return
    with runtime.db.session() as session:
        overview = overview_reply(totals.deployment_status(session))
        outbox.publish_home(session, user_id, home_view(overview), now=runtime.clock.now())
    runtime.outbox.wake()
