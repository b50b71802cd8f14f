"""A command someone else types while the code under test is busy (building a digest, an export, the
Home boards, waiting on Slack): the proof that the busy work does not hold up the commands."""

from __future__ import annotations

import threading
from typing import Any

from tests.support.bot import RunningBot


class TypedMeanwhile:
    """`type_once()`, called from inside the busy work, sends the command from another thread and
    waits for its reply (at most once); `reply` is what its sender saw."""

    def __init__(self, bot: RunningBot, command: str, text: str, **request: Any) -> None:
        self._send = lambda: bot.reply(command, text, **request)
        self.reply: dict[str, Any] | None = None

    def type_once(self) -> None:
        if self.reply is not None:
            return
        replies: list[dict[str, Any]] = []
        officer = threading.Thread(target=lambda: replies.append(self._send()))
        officer.start()
        officer.join(10)
        assert replies, "the command typed meanwhile got no reply within 10 s"
        self.reply = replies[0]
