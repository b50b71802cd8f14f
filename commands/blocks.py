"""Block Kit building blocks that stay inside Slack's limits, and escaping of user text."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

Block = dict[str, Any]

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_BUTTON_TEXT = 75
MAX_FALLBACK_TEXT = 3000
# Characters of list text one message may carry. Slack's hard limits are 40,000 characters of text and
# 3,000 per section, but messages around 13,000 characters of blocks have been refused in practice; a
# list longer than this is summarised and points to the command that shows one item in full.
LIST_BUDGET = 8000
ELLIPSIS = "…"


def escape(text: str) -> str:
    """Neutralise Slack's control sequences: `<!channel>`, `<@U…>`, links can never come from user text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# What the bot itself may send between angle brackets: mentions of people, channels and user groups,
# and links. User text never gets here raw (it is escaped first); this catches the bot's own `<` and
# `>`, such as `<country>` in a usage line or `low < high`, which Slack would try to parse.
_SLACK_MARKUP = re.compile(
    r"(<(?:@[UW][A-Z0-9]+|#[CGD][A-Z0-9]+|!subteam\^[A-Z0-9]+|(?:https?|mailto):[^<>\s|]+)(?:\|[^<>]*)?>)"
)
_STRAY_GT = re.compile(r"(?<!^)(?<!\n)>")  # `>` opening a line is a block quote


def markup_safe(text: str) -> str:
    """mrkdwn in which every `<…>` is a mention or a link the bot meant; any other `<`, `>` is escaped."""
    pieces = _SLACK_MARKUP.split(text)
    return "".join(
        piece if index % 2 else _STRAY_GT.sub("&gt;", piece.replace("<", "&lt;"))
        for index, piece in enumerate(pieces)
    )


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1] + ELLIPSIS


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": truncate(markup_safe(text), MAX_SECTION_TEXT)}


def plain(text: str, limit: int = MAX_SECTION_TEXT) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text, limit), "emoji": True}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, MAX_HEADER_TEXT)}


def divider() -> Block:
    return {"type": "divider"}


def section(text: str, *, fields: Sequence[str] = ()) -> Block:
    block: Block = {"type": "section", "text": mrkdwn(text)}
    if fields:
        block["fields"] = [
            {"type": "mrkdwn", "text": truncate(markup_safe(field), MAX_FIELD_TEXT)}
            for field in fields[:MAX_FIELDS]
        ]
    return block


def fields_section(fields: Sequence[str]) -> Block:
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": truncate(markup_safe(f), MAX_FIELD_TEXT)} for f in fields[:MAX_FIELDS]
        ],
    }


def context(*texts: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(t) for t in texts[:MAX_CONTEXT_ELEMENTS]]}


def button(text: str, action_id: str, value: str, *, style: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "text": plain(text, MAX_BUTTON_TEXT),
        "action_id": action_id,
        "value": value,
    }
    if style is not None:
        element["style"] = style
    return element


def actions(*elements: dict[str, Any], block_id: str | None = None) -> Block:
    block: Block = {"type": "actions", "elements": list(elements)}
    if block_id is not None:
        block["block_id"] = block_id
    return block


def code_sections(lines: Iterable[str]) -> list[Block]:
    """A monospaced table split over as many sections as needed, each under the section text limit."""
    budget = MAX_SECTION_TEXT - len("``````") - 2
    chunks: list[list[str]] = [[]]
    size = 0
    for line in lines:
        line = truncate(line, budget)
        if chunks[-1] and size + len(line) + 1 > budget:
            chunks.append([])
            size = 0
        chunks[-1].append(line)
        size += len(line) + 1
    return [section("```" + "\n".join(chunk) + "```") for chunk in chunks if chunk]


def fit_blocks(
    blocks: list[Block], note: str = "The list is cut short to fit in one Slack message."
) -> list[Block]:
    """Keep a message within 50 blocks, saying so rather than letting Slack refuse it."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    return [*blocks[: MAX_BLOCKS - 1], context(f":scissors: {note}")]


def progress_bar(ratio: float | None, width: int = 10) -> str:
    """`▓▓▓▓▓░░░░░` for 0.5; an over-filled pledge shows full. None (nothing pledged) shows blank."""
    if ratio is None:
        return "·" * width
    filled = round(max(0.0, min(ratio, 1.0)) * width)
    return "▓" * filled + "░" * (width - filled)


def percent(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio * 100:.0f}%"


def text_sections(lines: Iterable[str]) -> list[Block]:
    """mrkdwn lines grouped into as few sections as the section text limit allows."""
    chunks: list[list[str]] = [[]]
    size = 0
    for line in lines:
        line = truncate(line, MAX_SECTION_TEXT)
        if chunks[-1] and size + len(line) + 1 > MAX_SECTION_TEXT:
            chunks.append([])
            size = 0
        chunks[-1].append(line)
        size += len(line) + 1
    return [section("\n".join(chunk)) for chunk in chunks if chunk]


def lines_within(lines: Sequence[str], budget: int = LIST_BUDGET) -> list[str]:
    """The first lines that fit in `budget` characters (newlines counted)."""
    kept: list[str] = []
    for line in lines:
        budget -= len(line) + 1
        if budget < 0:
            break
        kept.append(line)
    return kept


def summarised_sections(
    lines: Sequence[str],
    more: str,
    noun: tuple[str, str] = ("country", "countries"),
    budget: int = LIST_BUDGET,
) -> list[Block]:
    """`lines` (one per `noun`) as sections within `budget`; when some do not fit, a last context line
    says how many were left out and `more` ("`/liaison who <country>` for one country") where to look."""
    shown = lines_within(lines, budget)
    blocks = text_sections(shown)
    left_out = len(lines) - len(shown)
    if left_out:
        name = noun[0] if left_out == 1 else noun[1]
        blocks.append(context(f":scissors: {left_out:,} more {name} not shown — {more}."))
    return blocks
