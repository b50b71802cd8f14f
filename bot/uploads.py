"""Performs an outbox `files.upload` message with slack_sdk's `files_upload_v2` (getUploadURLExternal,
a POST of the bytes to the returned URL, completeUploadExternal sharing it into the channel)."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from slack_sdk.web import SlackResponse


def upload_file(client: WebClient, payload: dict[str, Any], content: bytes) -> SlackResponse:
    """Upload `content` as the payload's file; Slack's answer to files.completeUploadExternal, with
    the channel the file went to as `channel`. Slack errors propagate as SlackApiError, network errors
    as OSError."""
    channel = payload.get("channel")
    if not channel:
        # A private file for one person: the DM between the bot and that user (scope im:write).
        opened = client.conversations_open(users=str(payload["user"]))
        channel = str((opened.get("channel") or {}).get("id", ""))
    thread_ts = payload.get("thread_ts") if payload.get("in_thread") else None
    response = client.files_upload_v2(
        channel=channel,
        filename=str(payload["filename"]),
        title=str(payload.get("title") or payload["filename"]),
        content=content,
        initial_comment=payload.get("initial_comment"),
        thread_ts=thread_ts,
    )
    if isinstance(response.data, dict):
        response.data["channel"] = channel
    return response
