"""Slack-signed HTTP requests for driving the bot's real ``/slack/events`` endpoint.

``SlackRequestFactory`` builds bodies shaped like what Slack sends (see /work/shared/fixtures) and
signs them (``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}``) with ``bot.slack_requests``, the builder
``liaison shell`` uses too: typed text goes out entity-encoded, as Slack sends it. ``SignedClient``
posts them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import httpx

from bot.slack_requests import (
    FORM_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    block_actions_payload,
    interaction_body,
    signed_headers,
    slash_command_body,
)
from tests.support.slack_standin import BOT_ID, BOT_USER_ID, TEAM_ID

EVENTS_PATH = "/slack/events"

API_APP_ID = "A123456"
VERIFICATION_TOKEN = "gIkuvaNzQIHg97ATvDxqgjtO"  # deprecated by Slack, but still sent
TEAM_DOMAIN = "games-ops"
DEFAULT_USER_ID = "U0LIAISON1"
DEFAULT_USER_NAME = "anna"
DEFAULT_CHANNEL_ID = "C0POLAND"
DEFAULT_CHANNEL_NAME = "poland-liaison"
DEFAULT_COMMAND_RESPONSE_URL = "https://hooks.slack.com/commands/T0001/1/abc"
DEFAULT_ACTION_RESPONSE_URL = "https://hooks.slack.com/actions/T0001/1/abc"
EPHEMERAL_MESSAGE_TS = "1700000000.000001"


def new_trigger_id() -> str:
    return f"13345224609.738474920.{uuid.uuid4().hex}"


class SlackRequestFactory:
    """Builds Slack request bodies and their signed headers."""

    def __init__(self, signing_secret: str, clock: Callable[[], float] = time.time) -> None:
        self.signing_secret = signing_secret
        self._clock = clock

    def headers(
        self, body: str, *, timestamp: int | None = None, content_type: str = FORM_CONTENT_TYPE
    ) -> dict[str, str]:
        """Content type plus ``X-Slack-Request-Timestamp`` and ``X-Slack-Signature`` for ``body``."""
        stamp = int(self._clock()) if timestamp is None else timestamp
        return signed_headers(self.signing_secret, body, stamp, content_type=content_type)

    def slash_command(
        self,
        command: str,
        text: str,
        *,
        user_id: str = DEFAULT_USER_ID,
        user_name: str = DEFAULT_USER_NAME,
        channel_id: str = DEFAULT_CHANNEL_ID,
        channel_name: str = DEFAULT_CHANNEL_NAME,
        team_id: str = TEAM_ID,
        response_url: str = DEFAULT_COMMAND_RESPONSE_URL,
        trigger_id: str | None = None,
        enterprise_id: str | None = None,
        enterprise_name: str | None = None,
        encoded: bool = False,
    ) -> str:
        """A slash command body as Slack sends it for ``text`` typed by the user (entity-encoded;
        ``encoded=True`` sends ``text`` exactly as given)."""
        return slash_command_body(
            command,
            text,
            team_id=team_id,
            team_domain=TEAM_DOMAIN,
            channel_id=channel_id,
            channel_name=channel_name,
            user_id=user_id,
            user_name=user_name,
            api_app_id=API_APP_ID,
            response_url=response_url,
            trigger_id=trigger_id or new_trigger_id(),
            token=VERIFICATION_TOKEN,
            enterprise_id=enterprise_id,
            enterprise_name=enterprise_name,
            encoded=encoded,
        )

    def block_actions(
        self,
        action_id: str,
        value: str,
        *,
        user_id: str = DEFAULT_USER_ID,
        user_name: str = DEFAULT_USER_NAME,
        channel_id: str = DEFAULT_CHANNEL_ID,
        channel_name: str = DEFAULT_CHANNEL_NAME,
        team_id: str = TEAM_ID,
        message_ts: str | None = None,
        message: Mapping[str, Any] | None = None,
        response_url: str = DEFAULT_ACTION_RESPONSE_URL,
        block_id: str = "b",
        action_type: str = "button",
        trigger_id: str | None = None,
        state_values: Mapping[str, Any] | None = None,
    ) -> str:
        """A button press as Slack sends it: form body ``payload=<json>``.

        With ``message_ts`` the press is on a channel message (``message`` is included; pass
        ``message`` to set its text/blocks); without it, on an ephemeral message, which Slack
        reports without a ``message`` field.
        """
        payload = block_actions_payload(
            action=_action(action_id, value, block_id, action_type, action_ts=self._clock()),
            user_id=user_id,
            user_name=user_name,
            team_id=team_id,
            team_domain=TEAM_DOMAIN,
            channel_id=channel_id,
            channel_name=channel_name,
            api_app_id=API_APP_ID,
            token=VERIFICATION_TOKEN,
            trigger_id=trigger_id or new_trigger_id(),
            response_url=response_url,
            container=_container(channel_id, message_ts),
            message=None if message_ts is None else _bot_message(message_ts, message),
            state_values=state_values,
        )
        return interaction_body(payload)

    def view_submission(
        self,
        view: Mapping[str, Any],
        state_values: Mapping[str, Any],
        *,
        user_id: str = DEFAULT_USER_ID,
        user_name: str = DEFAULT_USER_NAME,
        team_id: str = TEAM_ID,
        view_id: str = "V0000000001",
    ) -> str:
        """A modal's submission as Slack sends it: ``payload=<json>`` with ``view.state.values``
        (``view`` is what the bot passed to ``views.open``, as Slack echoes it back)."""
        payload: dict[str, Any] = {
            "type": "view_submission",
            "team": {"id": team_id, "domain": TEAM_DOMAIN},
            "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
            "api_app_id": API_APP_ID,
            "token": VERIFICATION_TOKEN,
            "trigger_id": new_trigger_id(),
            "view": {
                **dict(view),
                "id": view_id,
                "team_id": team_id,
                "app_id": API_APP_ID,
                "state": {"values": dict(state_values)},
                "hash": "1700000000.abcdef12",
                "private_metadata": view.get("private_metadata", ""),
                "callback_id": view.get("callback_id", ""),
            },
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        return interaction_body(payload)

    def message_shortcut(
        self,
        callback_id: str,
        message: Mapping[str, Any],
        *,
        user_id: str = DEFAULT_USER_ID,
        user_name: str = DEFAULT_USER_NAME,
        channel_id: str = DEFAULT_CHANNEL_ID,
        channel_name: str = DEFAULT_CHANNEL_NAME,
        team_id: str = TEAM_ID,
        response_url: str = DEFAULT_ACTION_RESPONSE_URL,
        trigger_id: str | None = None,
    ) -> str:
        """A message shortcut (``type: message_action``) on ``message`` (``ts``, ``text``, ``user``)."""
        full_message = {"type": "message", **dict(message)}
        payload: dict[str, Any] = {
            "type": "message_action",
            "token": VERIFICATION_TOKEN,
            "action_ts": f"{self._clock():.6f}",
            "team": {"id": team_id, "domain": TEAM_DOMAIN},
            "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
            "channel": {"id": channel_id, "name": channel_name},
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": trigger_id or new_trigger_id(),
            "response_url": response_url,
            "message_ts": str(full_message.get("ts", "")),
            "message": full_message,
        }
        return interaction_body(payload)

    def event_callback(
        self,
        event: Mapping[str, Any],
        *,
        event_id: str,
        team_id: str = TEAM_ID,
        event_time: int | None = None,
    ) -> str:
        """An Events API ``event_callback`` JSON body wrapping ``event``."""
        body = {
            "token": VERIFICATION_TOKEN,
            "team_id": team_id,
            "api_app_id": API_APP_ID,
            "event": dict(event),
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(self._clock()) if event_time is None else event_time,
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": team_id,
                    "user_id": BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
        }
        return json.dumps(body)

    def url_verification(self, challenge: str) -> str:
        return json.dumps({"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"})


class SignedClient:
    """``httpx.Client`` posting signed Slack requests to ``<base_url>/slack/events``."""

    def __init__(
        self,
        base_url: str,
        signing_secret: str,
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
    ) -> None:
        self.factory = SlackRequestFactory(signing_secret, clock)
        self.http = httpx.Client(base_url=base_url, timeout=timeout)

    def post_command(self, command: str, text: str, **kwargs: Any) -> httpx.Response:
        """Slash command; ``kwargs`` go to ``SlackRequestFactory.slash_command``."""
        return self.post_signed(self.factory.slash_command(command, text, **kwargs))

    def post_action(self, action_id: str, value: str, **kwargs: Any) -> httpx.Response:
        """Block action; ``kwargs`` go to ``SlackRequestFactory.block_actions``."""
        return self.post_signed(self.factory.block_actions(action_id, value, **kwargs))

    def post_view_submission(
        self, view: Mapping[str, Any], state_values: Mapping[str, Any], **kwargs: Any
    ) -> httpx.Response:
        """Modal submission; ``kwargs`` go to ``SlackRequestFactory.view_submission``."""
        return self.post_signed(self.factory.view_submission(view, state_values, **kwargs))

    def post_message_shortcut(
        self, callback_id: str, message: Mapping[str, Any], **kwargs: Any
    ) -> httpx.Response:
        """Message shortcut; ``kwargs`` go to ``SlackRequestFactory.message_shortcut``."""
        return self.post_signed(self.factory.message_shortcut(callback_id, message, **kwargs))

    def post_event(
        self,
        event: Mapping[str, Any],
        *,
        event_id: str,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Events API callback; ``retry_num``/``retry_reason`` imitate Slack's redeliveries."""
        body = self.factory.event_callback(event, event_id=event_id, **kwargs)
        extra: dict[str, str] = {}
        if retry_num is not None:
            extra["X-Slack-Retry-Num"] = str(retry_num)
            extra["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        elif retry_reason is not None:
            extra["X-Slack-Retry-Reason"] = retry_reason
        return self.post_signed(body, content_type=JSON_CONTENT_TYPE, extra_headers=extra)

    def post_signed(
        self,
        body: str,
        *,
        content_type: str = FORM_CONTENT_TYPE,
        timestamp: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        headers = self.factory.headers(body, timestamp=timestamp, content_type=content_type)
        return self.post_raw(body, {**headers, **(extra_headers or {})})

    def post_raw(self, body: str | bytes, headers: Mapping[str, str]) -> httpx.Response:
        """Post exactly ``body`` with exactly ``headers`` (for forged or stale signatures)."""
        return self.http.post(EVENTS_PATH, content=body, headers=dict(headers))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> SignedClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _container(channel_id: str, message_ts: str | None) -> dict[str, Any]:
    return {
        "type": "message",
        "message_ts": message_ts or EPHEMERAL_MESSAGE_TS,
        "channel_id": channel_id,
        "is_ephemeral": message_ts is None,
    }


def _action(
    action_id: str, value: str, block_id: str, action_type: str, *, action_ts: float
) -> dict[str, Any]:
    return {
        "action_id": action_id,
        "block_id": block_id,
        "text": {"type": "plain_text", "text": action_id},
        "value": value,
        "type": action_type,
        "action_ts": f"{action_ts:.6f}",
    }


def _bot_message(message_ts: str, message: Mapping[str, Any] | None) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "ts": message_ts,
        "text": "",
        "blocks": [],
    }
    return {**base, **(message or {})}
