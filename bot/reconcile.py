"""Was an uncertain post made after all? Slack has no idempotency key for chat.postMessage, so each
post carries its outbox key in Slack message metadata; after a timeout, a dropped connection or a
worker that died mid-call, the channel's recent history (or the thread's replies) is searched for
that key before the message may be posted again.

Needs `channels:history` and `groups:history` (and `im:history`/`mpim:history` for direct messages).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient

EVENT_TYPE = "liaison_outbox"
PAGE_SIZE = 200
MAX_PAGES = 5
LOOKBACK = timedelta(minutes=5)  # how long before the uncertain attempt the post may have landed


class HistoryTooLong(RuntimeError):
    """More messages since the attempt than we search: the answer stays unknown."""


def metadata_for(key: str) -> dict[str, Any]:
    return {"event_type": EVENT_TYPE, "event_payload": {"outbox_key": key}}


def find_posted(
    client: WebClient, *, channel: str, key: str, thread_ts: str | None, since: datetime
) -> str | None:
    """The ts of our message carrying `key` in `channel` (or in the thread), or None if it is not there."""
    params: dict[str, Any] = {
        "channel": channel,
        "oldest": f"{(since - LOOKBACK).timestamp():.6f}",
        "include_all_metadata": True,
        "limit": PAGE_SIZE,
    }
    for _ in range(MAX_PAGES):
        if thread_ts is None:
            response = client.conversations_history(**params)
        else:
            response = client.conversations_replies(ts=thread_ts, **params)
        for message in response.get("messages") or []:
            if _carries(message, key):
                return str(message["ts"])
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not response.get("has_more") or not cursor:
            return None
        params["cursor"] = cursor
    raise HistoryTooLong(f"more than {MAX_PAGES * PAGE_SIZE} messages to search")


def _carries(message: dict[str, Any], key: str) -> bool:
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != EVENT_TYPE:
        return False
    payload = metadata.get("event_payload")
    return isinstance(payload, dict) and payload.get("outbox_key") == key
