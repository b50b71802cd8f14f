"""Block Kit rendered as terminal text, for `liaison shell`."""

from __future__ import annotations

import html
import re
from typing import Any

_USER = re.compile(r"<@([A-Z0-9]+)(?:\|([^>]+))?>")
_CHANNEL = re.compile(r"<#([A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(channel|here|everyone)>")
_LINK = re.compile(r"<(https?://[^|>]+)(?:\|([^>]+))?>")


def mrkdwn_to_text(text: str) -> str:
    text = _USER.sub(lambda m: "@" + (m.group(2) or m.group(1)), text)
    text = _CHANNEL.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)
    text = _SPECIAL.sub(lambda m: "@" + m.group(1), text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1), text)
    text = text.replace("```", "")
    return html.unescape(text)


def _text_of(obj: Any) -> str:
    if isinstance(obj, dict):
        return mrkdwn_to_text(str(obj.get("text", "")))
    return ""


def render_blocks(blocks: list[dict[str, Any]], buttons: list[dict[str, Any]] | None = None) -> str:
    """Readable text for a message; buttons are numbered and appended to `buttons` for `:click N`."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            title = _text_of(block.get("text"))
            lines += [title, "=" * min(len(title), 60)]
        elif kind == "section":
            if block.get("text"):
                lines.append(_text_of(block["text"]))
            fields = [_text_of(f).replace("\n", ": ") for f in block.get("fields", [])]
            if fields:
                lines.append("   ".join(fields))
        elif kind == "context":
            lines.append("  " + " · ".join(_text_of(e) for e in block.get("elements", [])))
        elif kind == "divider":
            lines.append("-" * 40)
        elif kind == "actions":
            labels = []
            for element in block.get("elements", []):
                if buttons is not None:
                    buttons.append(element)
                    labels.append(f"[{len(buttons)}] {_text_of(element.get('text'))}")
                else:
                    labels.append(f"[{_text_of(element.get('text'))}]")
            lines.append("   ".join(labels) + ("   (type :click N)" if buttons is not None else ""))
    return "\n".join(lines)


def render_message(message: dict[str, Any], buttons: list[dict[str, Any]] | None = None) -> str:
    blocks = message.get("blocks")
    if isinstance(blocks, list) and blocks:
        return render_blocks(blocks, buttons)
    return mrkdwn_to_text(str(message.get("text", "")))
