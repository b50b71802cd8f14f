"""What the operations centre is told when Slack refuses a message for good."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.outbox_worker import FailureHook
from commands.blocks import Block, escape, section
from storage import outbox
from storage.models import OutboxMessage


def delivery_failure_report(message: OutboxMessage, error: str) -> tuple[str, list[Block]]:
    """What ops read when a message can never be delivered (e.g. Liaison is not in the channel)."""
    where = f"<#{message.lane}>" if message.lane[:1] in ("C", "G", "D") else f"`{escape(message.lane)}`"
    advice = {
        "not_in_channel": "Invite Liaison to the channel (`/invite @liaison`).",
        "channel_not_found": "The channel no longer exists or is private: re-link the country's channel.",
        "is_archived": "The channel is archived: link the country's new channel.",
    }.get(error, "See Liaison's log for details.")
    text = f":warning: Liaison could not deliver a message to {where}: `{escape(error)}`. {advice}"
    return text, [section(text)]


def report_failures_to(ops_channel: str | None) -> FailureHook | None:
    """Tell the operations centre about messages that can never be delivered."""
    if not ops_channel:
        return None

    def report(session: Session, message: OutboxMessage, error: str, now: datetime) -> None:
        if message.lane == ops_channel or message.method == outbox.RESPONSE_URL:
            return  # the ops channel itself is unreachable, or a user's reply expired: only the log can tell
        text, blocks = delivery_failure_report(message, error)
        outbox.post_message(session, ops_channel, text=text, blocks=blocks, now=now)

    return report
