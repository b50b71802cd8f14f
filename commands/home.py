"""The App Home view: a rendering of other replies, within the 100-block limit of a Home tab."""

from __future__ import annotations

from typing import Any

from commands.blocks import context
from commands.common import Reply

MAX_HOME_BLOCKS = 100


def home_view(*sections: Reply) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    for reply in sections:
        blocks.extend(reply.blocks)
    blocks.append(context("Type `/deployment`, `/arrivals help` or `/pledge help` in any channel."))
    if len(blocks) > MAX_HOME_BLOCKS:
        blocks = [*blocks[: MAX_HOME_BLOCKS - 1], context(":scissors: Cut short to fit the Home tab.")]
    return {"type": "home", "blocks": blocks}
