"""Ten admins' identical `/liaison` changes at the same moment: applied once, answered deterministically,
never "Something went wrong" — on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from storage.models import ChannelLink, LiaisonAssignment, UserRole
from tests.support.bot import RunningBot, reply_text
from tests.support.signing import SlackRequestFactory

ADMIN = "UADMIN"
TIMES = 10


def at_once(bot: RunningBot, text: str, channel_id: str = "C0POLAND") -> list[str]:
    """`/liaison <text>` sent TIMES times concurrently; the replies' texts, in order of arrival."""
    factory = SlackRequestFactory(bot.client.factory.signing_secret, lambda: bot.clock.now().timestamp())
    barrier = threading.Barrier(TIMES)
    replies: list[str] = []
    lock = threading.Lock()

    def send() -> None:
        body = factory.slash_command(
            "/liaison", text, user_id=ADMIN, channel_id=channel_id, response_url=bot.slack.response_url("c")
        )
        with httpx.Client(transport=httpx.WSGITransport(app=bot.wsgi), base_url=bot.url) as http:
            barrier.wait()
            response = http.post("/slack/events", content=body, headers=factory.headers(body))
        assert response.status_code == 200, response.text
        payload: dict[str, Any] = response.json()
        with lock:
            replies.append(reply_text(payload))

    threads = [threading.Thread(target=send) for _ in range(TIMES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(replies) == TIMES
    assert not [r for r in replies if "Something went wrong" in r or "busy" in r], replies
    return replies


def test_concurrent_identical_role_grants(any_bot: RunningBot) -> None:
    replies = at_once(any_bot, "role <@U0OPS|olga> ops")
    assert all("<@U0OPS> is now *ops*" in r for r in replies)
    [row] = any_bot.rows(UserRole)
    assert (row.user_id, row.role) == ("U0OPS", "ops")


def test_concurrent_identical_assignments(any_bot: RunningBot) -> None:
    replies = at_once(any_bot, "assign <@U0ANNA|anna> poland")
    assert sum("is now a liaison officer for *Poland*" in r for r in replies) == 1
    assert sum("is already a liaison for Poland" in r for r in replies) == TIMES - 1
    [row] = any_bot.rows(LiaisonAssignment)
    assert (row.user_id, row.country) == ("U0ANNA", "PL")


@pytest.mark.parametrize("channel", ["C0POLAND", "G0PRIVATE"])
def test_concurrent_identical_links(any_bot: RunningBot, channel: str) -> None:
    replies = at_once(any_bot, "link poland", channel_id=channel)
    assert sum("This channel is now *Poland*'s liaison channel" in r for r in replies) == 1
    assert sum("already Poland's liaison channel" in r for r in replies) == TIMES - 1
    [row] = any_bot.rows(ChannelLink)
    assert (row.channel_id, row.country) == (channel, "PL")
