"""Checks that a message is Block Kit Slack accepts, shared by the rendering tests.

User text that must never become a ping or a link (`HOSTILE`), as it may be stored: decoded from
Slack's encoding, where a literal `<`, `>` or `&` the user typed is plain text again.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

from slack_sdk.models.blocks import Block

from commands.blocks import MAX_BLOCKS

HOSTILE = "<!channel> <!here> <!everyone> <@U999|boss> <#C999|ops> <https://evil.example|click> R&D"
RAW_CONTROL = ("<!channel>", "<!here>", "<!everyone>", "<@U999|", "<#C999|", "<https://", "R&D")
ESCAPED = ("&lt;!channel&gt;", "&lt;!here&gt;", "&lt;@U999|boss&gt;", "&lt;#C999|ops&gt;", "R&amp;D")

MAX_MESSAGE_CHARS = 12_000  # Slack has refused messages around 13k characters of blocks


def texts_of(value: Any) -> Iterator[str]:
    """Every `text` string anywhere in a message (the fallback, sections, fields, buttons...)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                yield item
            else:
                yield from texts_of(item)
    elif isinstance(value, list):
        for item in value:
            yield from texts_of(item)


def everything(text: str, blocks: list[dict[str, Any]]) -> str:
    return "\n".join([text, *texts_of(blocks)])


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def assert_valid(text: str, blocks: list[dict[str, Any]], max_blocks: int = MAX_BLOCKS) -> None:
    assert_valid_message({"text": text, "blocks": blocks}, max_blocks)


def assert_valid_message(message: dict[str, Any], max_blocks: int = MAX_BLOCKS) -> None:
    """Block Kit that Slack accepts: slack_sdk's validators plus the limits they do not check."""
    assert isinstance(message.get("text"), str)
    assert message["text"].strip(), "a plain-text fallback is required"
    assert len(message["text"]) <= 3000
    blocks = message.get("blocks", [])
    assert 0 < len(blocks) <= max_blocks, len(blocks)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # unknown keys are warnings in slack_sdk: make them fail
        for raw in blocks:
            parsed = Block.parse(raw)
            assert parsed is not None, raw
            parsed.validate_json()
            assert parsed.to_dict() == raw, "slack_sdk dropped or changed part of the block"
    for block in blocks:
        kind = block["type"]
        if kind == "header":
            assert block["text"]["type"] == "plain_text"
            assert len(block["text"]["text"]) <= 150
        elif kind == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert 0 < len(block["text"]["text"]) <= 3000
            fields = block.get("fields", [])
            assert len(fields) <= 10
            assert all(len(f["text"]) <= 2000 for f in fields)
        elif kind == "context":
            assert 0 < len(block["elements"]) <= 10
        elif kind == "actions":
            assert 0 < len(block["elements"]) <= 25
            assert all(len(e["text"]["text"]) <= 75 for e in block["elements"])
    size = sum(len(text) for text in texts_of(blocks))
    assert size <= MAX_MESSAGE_CHARS, f"{size} characters of text in one message"
