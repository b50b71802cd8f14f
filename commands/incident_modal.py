"""The "open an incident" modal: the view (for `views.open`) and the checks of a submission.

A submission's problems are returned per block id, which is what Slack wants in
`ack(response_action="errors", errors={block_id: message})`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from commands.blocks import ELLIPSIS, context, plain, section
from commands.common import UsageError, mention
from commands.countries import Country, country_by_code
from commands.incident import MAX_COUNTRIES, MAX_DESCRIPTION, MAX_TITLE, OpenRequest, Source, title_from
from commands.incident_card import SEVERITIES
from commands.incident_text import plain_text
from commands.parsing import country_from
from commands.slack_text import decode

CALLBACK_ID = "incident_open"
SHORTCUT_CALLBACK_ID = "incident_from_message"
MAX_OPTIONS = 100  # Slack's limit for a static select's options
BLOCK_SEVERITY = "severity"
BLOCK_TITLE = "title"
BLOCK_DESCRIPTION = "description"
BLOCK_COUNTRIES = "countries"
BLOCK_OTHER_COUNTRIES = "other_countries"
ACTION = "value"


@dataclass(frozen=True)
class ModalContext:
    """What the modal carries in `private_metadata`: where the card goes, and the source message."""

    channel: str
    source: Source | None = None

    def encode(self) -> str:
        data: dict[str, str] = {"channel": self.channel}
        if self.source is not None:
            data["source_channel"] = self.source.channel
            data["source_ts"] = self.source.ts
            if self.source.permalink:
                data["source_permalink"] = self.source.permalink
        return json.dumps(data)

    @classmethod
    def decode(cls, raw: str) -> ModalContext | None:
        try:
            data = json.loads(raw or "{}")
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("channel"), str) or not data["channel"]:
            return None
        source = None
        if data.get("source_channel") and data.get("source_ts"):
            source = Source(
                channel=str(data["source_channel"]),
                ts=str(data["source_ts"]),
                permalink=str(data["source_permalink"]) if data.get("source_permalink") else None,
            )
        return cls(channel=data["channel"], source=source)


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": plain(text, 75), "value": value}


def _severity_option(level: int) -> dict[str, Any]:
    name, _ = SEVERITIES[level]
    return _option(f"sev{level} — {name}", str(level))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def open_view(
    modal: ModalContext,
    *,
    country_choices: Sequence[str] = (),
    title: str = "",
    description: str = "",
    source_author: str | None = None,
) -> dict[str, Any]:
    """The modal. `country_choices`: ISO codes offered in the multi-select (others can be typed)."""
    blocks: list[dict[str, Any]] = []
    if modal.source is not None:
        who = f" by {mention(source_author)}" if source_author else ""
        blocks.append(context(f"From a message{who} in <#{modal.source.channel}>; the incident links to it."))
    blocks += [
        {
            "type": "input",
            "block_id": BLOCK_SEVERITY,
            "label": plain("Severity"),
            "element": {
                "type": "static_select",
                "action_id": ACTION,
                "options": [_severity_option(level) for level in SEVERITIES],
                "initial_option": _severity_option(3),
            },
        },
        {
            "type": "input",
            "block_id": BLOCK_TITLE,
            "label": plain("Title"),
            "element": {
                "type": "plain_text_input",
                "action_id": ACTION,
                "max_length": MAX_TITLE,
                "placeholder": plain("Suspicious package at the Trocadéro fan zone"),
                **({"initial_value": _cut(title, MAX_TITLE)} if title else {}),
            },
        },
        {
            "type": "input",
            "block_id": BLOCK_DESCRIPTION,
            "optional": True,
            "label": plain("Description"),
            "element": {
                "type": "plain_text_input",
                "action_id": ACTION,
                "multiline": True,
                "max_length": MAX_DESCRIPTION,
                **({"initial_value": _cut(description, MAX_DESCRIPTION)} if description else {}),
            },
        },
    ]
    options = [_option(country_by_code(code).name, code) for code in country_choices][:MAX_OPTIONS]
    if options:
        blocks.append(
            {
                "type": "input",
                "block_id": BLOCK_COUNTRIES,
                "optional": True,
                "label": plain("Countries involved"),
                "element": {
                    "type": "multi_static_select",
                    "action_id": ACTION,
                    "options": options,
                    "max_selected_items": MAX_COUNTRIES,
                },
            }
        )
    blocks.append(
        {
            "type": "input",
            "block_id": BLOCK_OTHER_COUNTRIES,
            "optional": True,
            "label": plain("Other countries" if options else "Countries involved"),
            "hint": plain("Names or codes, separated by commas — as /arrivals accepts them."),
            "element": {"type": "plain_text_input", "action_id": ACTION, "max_length": 500},
        }
    )
    if not modal.source:
        blocks.append(section(f"The card will be posted in <#{modal.channel}>."))
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "title": plain("Open an incident", 24),
        "submit": plain("Open", 24),
        "close": plain("Cancel", 24),
        "private_metadata": modal.encode(),
        "blocks": blocks,
    }


def prefill_from_message(raw_text: str) -> tuple[str, str]:
    """A title (the message's first line) and a description (the whole message), as plain text."""
    text = plain_text(raw_text).strip()
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return " ".join(first_line.split()), text


def _value(values: Mapping[str, Any], block: str) -> Mapping[str, Any]:
    element = (values.get(block) or {}).get(ACTION) or {}
    return element if isinstance(element, Mapping) else {}


def parse_submission(values: Mapping[str, Any]) -> OpenRequest | dict[str, str]:
    """`view.state.values` → the request, or error messages per block id."""
    errors: dict[str, str] = {}
    selected = _value(values, BLOCK_SEVERITY).get("selected_option") or {}
    severity = int(selected["value"]) if str(selected.get("value", "")).isdigit() else 0
    if severity not in SEVERITIES:
        errors[BLOCK_SEVERITY] = "Choose a severity from sev1 (critical) to sev4 (minor)."
    title = ""
    try:
        title = title_from(decode(str(_value(values, BLOCK_TITLE).get("value") or "")))
    except UsageError as error:
        errors[BLOCK_TITLE] = error.message
    description = decode(str(_value(values, BLOCK_DESCRIPTION).get("value") or "")).strip() or None
    if description is not None and len(description) > MAX_DESCRIPTION:
        errors[BLOCK_DESCRIPTION] = f"At most {MAX_DESCRIPTION} characters (this is {len(description)})."
    countries: list[Country] = []
    for option in _value(values, BLOCK_COUNTRIES).get("selected_options") or []:
        try:
            country = country_by_code(str(option.get("value", "")))
        except KeyError:
            errors[BLOCK_COUNTRIES] = "Choose countries from the list."
            continue
        if country not in countries:
            countries.append(country)
    typed = plain_text(str(_value(values, BLOCK_OTHER_COUNTRIES).get("value") or ""))
    for name in (part.strip() for part in typed.split(",")):
        if not name:
            continue
        try:
            country = country_from(name)
        except UsageError as error:
            hint = f" {error.hint}" if error.hint else ""
            errors[BLOCK_OTHER_COUNTRIES] = _unmarked(error.message + hint)
            break
        if country not in countries:
            countries.append(country)
    if len(countries) > MAX_COUNTRIES:
        errors[BLOCK_OTHER_COUNTRIES] = f"At most {MAX_COUNTRIES} countries per incident."
    if errors:
        return errors
    return OpenRequest(severity=severity, title=title, countries=tuple(countries), description=description)


def _unmarked(text: str) -> str:
    """Modal error messages are plain text: drop mrkdwn emphasis and code marks."""
    return (
        text.replace("*", "")
        .replace("`", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
    )
