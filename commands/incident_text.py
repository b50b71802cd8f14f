"""Incident text as Slack sends it (entity-encoded, mentions and links in angle brackets) made plain.

Slash-command text and view inputs are decoded where they enter (`commands.slack_text.decode`); this
module is for message text made plain for a title (the "Open an incident" shortcut), where mentions
cannot stay mentions.

Slack encodes `&`, `<`, `>` in slash-command text, view inputs and message text; real mentions
and links arrive as `<@U123|name>`, `<#C123|name>`, `<!channel>`, `<https://…|label>`. Free text
that Liaison stores (titles, updates) is turned into plain text once, here, where it enters: real
mentions become `@name`, and entities are decoded once (`&lt;`, `&gt;`, then `&amp;`). Whatever
is shown later is escaped again (`commands.blocks.escape`), so it can never ping or link.
"""

from __future__ import annotations

import re

from commands.slack_text import decode_entities

_MARKUP = re.compile(r"<([^<>]*)>")


def _plain_markup(match: re.Match[str]) -> str:
    inner = match.group(1)
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        return "@" + (label or target[1:])
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!subteam^"):
        return "@" + (label.lstrip("@") or "group")
    if target.startswith("!"):
        return "@" + (label or target[1:].split("^")[0])
    return f"{label} ({target})" if label and label != target else target


def plain_text(raw: str) -> str:
    """Slack-encoded text as the plain text the user meant (markup first, then entities)."""
    return decode_entities(_MARKUP.sub(_plain_markup, raw))
