"""The one end-to-end path over a real socket (uvicorn), on SQLite and PostgreSQL; every other
end-to-end test drives the same WSGI app in-process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from storage.models import Movement
from tests.support.bot import RunningBot, reply_text, running_bot
from tests.support.slack_standin import SlackStandIn


@pytest.fixture
def served_bot(migrated_database_url: str, slack: SlackStandIn, signing_secret: str) -> Iterator[RunningBot]:
    with running_bot(migrated_database_url, slack, signing_secret, http=True) as running:
        yield running


def test_arrival_is_recorded_and_announced_in_channel(served_bot: RunningBot) -> None:
    assert served_bot.url.startswith("http://127.0.0.1:")
    body = served_bot.reply("/arrivals", "poland 40")
    assert body["response_type"] == "in_channel"
    assert "Poland: 40 arrived" in reply_text(body)
    [movement] = served_bot.rows(Movement)
    assert (movement.country, movement.count, movement.kind) == ("PL", 40, "arrival")
    assert served_bot.client.http.get("/healthz").json() == {"status": "ok", "reasons": []}
