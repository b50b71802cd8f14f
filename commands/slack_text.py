"""Text as Slack sends it, and user text as the bot shows it.

Slack sends what a user typed with `&`, `<` and `>` entity-encoded (`&amp;`, `&lt;`, `&gt;`); the only
raw `<…>` in it are the mentions and links Slack inserted itself (`should_escape: true`). `decode` turns
that into plain text once, where it enters: user and channel mentions stay mentions (`<@U123>`,
`<#C123>`, labels dropped: Slack shows the current name), special mentions (`<!channel>`, `<!here>`,
`<!everyone>`, user groups) become inert text, links become their label and address. `show` escapes
that text once, where it is rendered, keeping only those mentions.
"""

from __future__ import annotations

import re

_SLACK_MARKUP = re.compile(r"<([^<>]*)>")
_USER = re.compile(r"@([UW][A-Z0-9]{2,30})(?:\|[^<>]*)?")
_CHANNEL = re.compile(r"#([CGD][A-Z0-9]{2,30})(?:\|[^<>]*)?")
_KEPT_MENTION = re.compile(r"(<@[UW][A-Z0-9]{2,30}>|<#[CGD][A-Z0-9]{2,30}>)")


def decode_entities(text: str) -> str:
    """`&lt;` and `&gt;` first, `&amp;` last, so `&amp;lt;` (a typed `&lt;`) stays `&lt;`."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def decode(text: str) -> str:
    """Slack's encoding of typed text → the text itself, mentions kept, pings and links made inert."""
    parts: list[str] = []
    position = 0
    for match in _SLACK_MARKUP.finditer(text):
        parts.append(decode_entities(text[position : match.start()]))
        parts.append(_markup(match.group(1)))
        position = match.end()
    parts.append(decode_entities(text[position:]))
    return "".join(parts)


def _markup(inner: str) -> str:
    user = _USER.fullmatch(inner)
    if user:
        return f"<@{user.group(1)}>"
    channel = _CHANNEL.fullmatch(inner)
    if channel:
        return f"<#{channel.group(1)}>"
    target, _, label = inner.partition("|")
    label = decode_entities(label)
    if target.startswith("!"):
        # <!channel>, <!here>, <!everyone>, <!subteam^S123|@team>, <!date^…|fallback>: inert text.
        name = target[1:].split("^", 1)[0]
        if label:
            return label
        return f"@{name}"
    target = decode_entities(target)
    if label and label != target:
        return f"{label} ({target})"
    return target


def show(text: str) -> str:
    """User text for mrkdwn: `&`, `<`, `>` escaped, so it cannot ping or link; real mentions kept."""
    pieces = _KEPT_MENTION.split(text)
    return "".join(piece if index % 2 else _escape(piece) for index, piece in enumerate(pieces))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
