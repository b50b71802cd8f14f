"""Requests shaped and signed as Slack sends them: what `liaison shell` and the tests post to the app.

Typed text is sent the way Slack sends it: `&`, `<` and `>` entity-encoded (`R&D` → `R&amp;D`), except
the mentions and links Slack inserts itself, which a console or a test writes in Slack's own syntax
(`<@U123|anna>` for a person picked with @, `<#C123|ops>`, `<!channel>` for a typed @channel,
`<https://…|label>`).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"

# What Slack itself puts between angle brackets in a message it forwards.
_SLACK_MARKUP = re.compile(
    r"<(?:@[UW][A-Z0-9]+|#[CGD][A-Z0-9]+|![a-z]+(?:\^[A-Za-z0-9]+)?|(?:https?|mailto):[^\s<>|]+)(?:\|[^<>]*)?>"
)


def encode_typed_text(text: str) -> str:
    """What Slack sends for `text` typed in the message box (mentions and links written as Slack's)."""
    parts: list[str] = []
    position = 0
    for match in _SLACK_MARKUP.finditer(text):
        parts.append(_entities(text[position : match.start()]))
        parts.append(match.group(0))
        position = match.end()
    parts.append(_entities(text[position:]))
    return "".join(parts)


def _entities(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slash_command_body(
    command: str,
    text: str,
    *,
    team_id: str,
    team_domain: str,
    channel_id: str,
    channel_name: str,
    user_id: str,
    user_name: str,
    api_app_id: str,
    response_url: str,
    trigger_id: str,
    token: str,
    enterprise_id: str | None = None,
    enterprise_name: str | None = None,
    encoded: bool = False,
) -> str:
    """A form-encoded slash command with the fields Slack sends, in Slack's order.

    `text` is what the user typed; `encoded=True` sends it exactly as given (already Slack's encoding).
    """
    fields: list[tuple[str, str]] = [("token", token), ("team_id", team_id), ("team_domain", team_domain)]
    if enterprise_id is not None:
        fields += [("enterprise_id", enterprise_id), ("enterprise_name", enterprise_name or "")]
    fields += [
        ("channel_id", channel_id),
        ("channel_name", channel_name),
        ("user_id", user_id),
        ("user_name", user_name),
        ("command", command),
        ("text", text if encoded else encode_typed_text(text)),
        ("api_app_id", api_app_id),
        ("is_enterprise_install", "false"),
        ("response_url", response_url),
        ("trigger_id", trigger_id),
    ]
    return urlencode(fields)


def block_actions_payload(
    *,
    action: Mapping[str, Any],
    user_id: str,
    user_name: str,
    team_id: str,
    team_domain: str,
    channel_id: str,
    channel_name: str,
    api_app_id: str,
    token: str,
    trigger_id: str,
    response_url: str,
    container: Mapping[str, Any],
    message: Mapping[str, Any] | None = None,
    state_values: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A `block_actions` payload (a button press) with the fields Slack sends."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": token,
        "container": dict(container),
        "trigger_id": trigger_id,
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name},
        "state": {"values": dict(state_values or {})},
        "response_url": response_url,
        "actions": [dict(action)],
    }
    if message is not None:
        payload["message"] = dict(message)
    return payload


def interaction_body(payload: Mapping[str, Any]) -> str:
    """Slack posts interactions form-encoded, as `payload=<json>`."""
    return urlencode({"payload": json.dumps(payload)})


def signed_headers(
    signing_secret: str, body: str, timestamp: int, *, content_type: str = FORM_CONTENT_TYPE
) -> dict[str, str]:
    """Content type, `X-Slack-Request-Timestamp` and `X-Slack-Signature` (v0 HMAC-SHA256) for `body`."""
    stamp = str(timestamp)
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=stamp, body=body)
    if signature is None:
        raise RuntimeError("slack_sdk produced no signature")
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}


def wsgi_environ(path: str, body: str, headers: Mapping[str, str]) -> dict[str, Any]:
    """A signed request (`body`, `signed_headers`) as a WSGI server hands it to the app: for driving
    the app in process without an HTTP client (benchmarks, the tests that count the app's own objects)."""
    raw = body.encode()
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
    }
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    return environ
