"""Reads from Slack that a command needs before it answers (writes go through the outbox).

Each read has a short timeout: the command's answer must still leave within Slack's 3 seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.tokens import client_with

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 1
# conversations.info answers channel_not_found for a private channel the bot is not in.
_NOT_VISIBLE = frozenset({"channel_not_found"})


class SlackChannels:
    """`conversations.info` (scopes: channels:read for public channels, groups:read for private ones)."""

    def __init__(self, client: Callable[[], WebClient]) -> None:
        self._client = client

    @classmethod
    def reading_with(cls, client: WebClient, token: Callable[[], str]) -> SlackChannels:
        """`client` with a short timeout and the current bot `token`, made when first needed."""
        return cls(lambda: client_with(client, token=token(), timeout=READ_TIMEOUT_S))

    def bot_is_member(self, channel_id: str) -> bool | None:
        try:
            response = self._client().conversations_info(channel=channel_id)
        except SlackApiError as error:
            code = str(error.response.get("error", ""))
            if code in _NOT_VISIBLE:
                return False
            log.warning("conversations.info for %s failed: %s", channel_id, code)
            return None
        except Exception as error:  # timeout, connection refused, DNS…
            log.warning("conversations.info for %s failed: %s", channel_id, type(error).__name__)
            return None
        channel = response.get("channel")
        if not isinstance(channel, dict) or not isinstance(channel.get("is_member"), bool):
            return None
        return bool(channel["is_member"])


class AskedBefore:
    """Slack's answers for the channels a command needs, asked before its transaction began: a
    command never waits on Slack while it holds the database (on SQLite, the one writer's turn).
    A channel that was not asked about is unknown (None), as when Slack could not tell."""

    def __init__(self, answers: dict[str, bool | None]) -> None:
        self._answers = answers

    @classmethod
    def asking(cls, channels: SlackChannels, channel_ids: list[str]) -> AskedBefore:
        return cls({channel_id: channels.bot_is_member(channel_id) for channel_id in channel_ids})

    def bot_is_member(self, channel_id: str) -> bool | None:
        return self._answers.get(channel_id)
