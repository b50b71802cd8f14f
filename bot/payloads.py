"""What a signed Slack request must look like before Bolt sees it: a pure check of the body's shape.

Bolt trusts its input: a form body sent as JSON, `actions: []`, `"event": "x"` or a 20-digit button
value raise deep inside it (HTTP 500). Every payload is parsed and checked here once, at the edge;
what does not look like something Slack sends is refused with a reason (HTTP 400).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from commands import alert, duplicates

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")
CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,30}")
TEAM_ID = re.compile(r"[TE][A-Z0-9]{2,30}")
EVENT_ID = re.compile(r"Ev[A-Za-z0-9]{2,40}")
COMMAND_NAME = re.compile(r"/[a-z0-9_-]{1,31}")
# Buttons whose value is a row id: digits that fit a 64-bit integer column.
NUMERIC_ACTIONS = frozenset({alert.ACTION_ACK, duplicates.ACTION_RECORD_AGAIN, duplicates.ACTION_DISCARD})
ROW_ID = re.compile(r"[0-9]{1,18}")
MAX_TEXT = 4000  # Slack caps slash-command text at 4,000 characters
MAX_VALUE = 2000  # Block Kit caps a button value at 2,000 characters


class BadPayload(ValueError):
    """The body is not something Slack sends; the message says what is wrong (safe to show)."""


@dataclass(frozen=True)
class Envelope:
    """A checked request: its kind (`command`, `block_actions`, `event_callback`, …) and its body."""

    kind: str
    body: dict[str, Any]

    @property
    def is_command(self) -> bool:
        return self.kind == "command"


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def is_ssl_check(content_type: str, raw: bytes) -> bool:
    """Slack's `ssl_check=1` probe (answered with an empty 200, like Bolt does, signed or not)."""
    if media_type(content_type) != FORM or len(raw) > 512 or b"ssl_check" not in raw:
        return False
    try:
        fields = dict(parse_qsl(raw.decode("ascii"), keep_blank_values=True))
    except UnicodeDecodeError:
        return False
    return fields.get("ssl_check") == "1" and "command" not in fields


def check(content_type: str, text: str) -> Envelope:
    """The request's envelope, or BadPayload. `text` is the already verified, decoded body."""
    kind = media_type(content_type)
    if kind == JSON:
        return _check_json(text)
    if kind == FORM:
        return _check_form(text)
    raise BadPayload(f"unsupported content type {kind or '(none)'}")


def _check_json(text: str) -> Envelope:
    body = _json_object(text, "body")
    kind = _string(body, "type")
    if kind == "url_verification":
        challenge = _string(body, "challenge")
        if len(challenge) > 200:
            raise BadPayload("challenge too long")
    elif kind == "event_callback":
        _matching(body, "event_id", EVENT_ID)
        _matching(body, "team_id", TEAM_ID)
        event = body.get("event")
        if not isinstance(event, dict):
            raise BadPayload("event must be an object")
        _string(event, "type")
        if "user" in event and isinstance(event["user"], str):
            _matching(event, "user", USER_ID)
    return Envelope(kind, body)


def _check_form(text: str) -> Envelope:
    try:
        fields = dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=64))
    except ValueError as error:
        raise BadPayload("malformed form body") from error
    if "payload" in fields:
        return _check_interaction(_json_object(fields["payload"], "payload"))
    if "command" in fields:
        return _check_command(fields)
    raise BadPayload("neither a slash command nor an interaction payload")


def _check_command(fields: dict[str, str]) -> Envelope:
    _matching(fields, "command", COMMAND_NAME)
    _matching(fields, "user_id", USER_ID)
    _matching(fields, "channel_id", CHANNEL_ID)
    _matching(fields, "team_id", TEAM_ID)
    if fields.get("enterprise_id"):
        _matching(fields, "enterprise_id", TEAM_ID)
    if "text" not in fields:
        raise BadPayload("text is missing")
    if len(fields["text"]) > MAX_TEXT:
        raise BadPayload("text too long")
    _url(fields, "response_url")
    return Envelope("command", dict(fields))


def _check_interaction(body: dict[str, Any]) -> Envelope:
    kind = _string(body, "type")
    user = body.get("user")
    if not isinstance(user, dict):
        raise BadPayload("user must be an object")
    _matching(user, "id", USER_ID)
    if user.get("team_id") is not None:
        _matching(user, "team_id", TEAM_ID)
    team = body.get("team")
    if team is not None and not (isinstance(team, dict) and TEAM_ID.fullmatch(str(team.get("id", "")))):
        raise BadPayload("team must be an object with a T… or E… id")
    channel = body.get("channel")
    if channel is not None and not (
        isinstance(channel, dict) and CHANNEL_ID.fullmatch(str(channel.get("id", "")))
    ):
        raise BadPayload("channel must be an object with a C…, G… or D… id")
    container = body.get("container")
    if container is not None and not isinstance(container, dict):
        raise BadPayload("container must be an object")
    if kind == "block_actions":
        _check_actions(body.get("actions"))
        if "response_url" in body:
            _url(body, "response_url")
    return Envelope(kind, body)


def _check_actions(actions: object) -> None:
    if not isinstance(actions, list) or not actions or len(actions) > 25:
        raise BadPayload("actions must be a list of 1 to 25 actions")
    for action in actions:
        if not isinstance(action, dict):
            raise BadPayload("each action must be an object")
        action_id = _string(action, "action_id")
        value = action.get("value")
        if value is not None and (not isinstance(value, str) or len(value) > MAX_VALUE):
            raise BadPayload("an action value must be a string of at most 2,000 characters")
        if action_id in NUMERIC_ACTIONS and not (isinstance(value, str) and ROW_ID.fullmatch(value)):
            raise BadPayload(f"{action_id} needs a numeric value")


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise BadPayload(f"{what} is not valid JSON") from error
    if not isinstance(value, dict):
        raise BadPayload(f"{what} must be a JSON object")
    return value


def _string(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise BadPayload(f"{key} is missing or not a string")
    return value


def _matching(body: dict[str, Any], key: str, pattern: re.Pattern[str]) -> str:
    value = _string(body, key)
    if not pattern.fullmatch(value):
        raise BadPayload(f"{key} is not a valid Slack id")
    return value


def _url(body: dict[str, Any], key: str) -> None:
    value = body.get(key)
    if value is None or value == "":
        return
    if not isinstance(value, str) or not value.startswith(("https://", "http://")) or len(value) > 500:
        raise BadPayload(f"{key} is not a URL")
