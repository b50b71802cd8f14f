from __future__ import annotations

from storage.models import Movement
from tests.support.bot import RunningBot, reply_text


def test_arrival_is_recorded_and_announced_in_channel(any_bot: RunningBot) -> None:
    body = any_bot.reply("/arrivals", "poland 40")
    assert body["response_type"] == "in_channel"
    assert "Poland: 40 arrived" in reply_text(body)
    [movement] = any_bot.rows(Movement)
    assert (movement.country, movement.count, movement.kind) == ("PL", 40, "arrival")
