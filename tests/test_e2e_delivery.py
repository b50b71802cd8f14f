"""Delivery as operators see it, through the bot's real endpoint: /healthz when Slack refuses the
token, ops told once, and a notice fanned out to every liaison channel in parallel."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from commands.countries import all_countries
from storage.models import OutboxMessage, OutboxStatus
from tests.support.bot import BOT_TOKEN, RunningBot, running_bot
from tests.support.slack_standin import SlackStandIn

OPS_CHANNEL = "C0OPSCENTRE"
ADMIN = "UADMIN"


@pytest.fixture
def ops_bot(sqlite_url: str, slack: SlackStandIn, signing_secret: str) -> Iterator[RunningBot]:
    with running_bot(sqlite_url, slack, signing_secret, ops_channel=OPS_CHANNEL) as running:
        yield running


def health(bot: RunningBot) -> dict[str, object]:
    response = bot.client.http.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, dict)
    return body


def link(bot: RunningBot, countries: list[str]) -> list[str]:
    channels = []
    for index, country in enumerate(countries):
        channel = f"C{index:06d}X"
        body = bot.reply("/liaison", f"link {country}", user_id=ADMIN, channel_id=channel)
        assert "liaison channel" in body["text"], body
        channels.append(channel)
    return channels


def raise_alert(bot: RunningBot, count: int) -> None:
    body = bot.reply("/alert", "raise urgence suspicious vehicle near the fan zone", user_id=ADMIN)
    assert f"{count} liaison channels" in body["text"], body


def test_a_revoked_token_degrades_health_tells_ops_once_and_loses_nothing(
    ops_bot: RunningBot, slack: SlackStandIn
) -> None:
    assert health(ops_bot) == {"status": "ok", "reasons": []}
    channels = link(ops_bot, ["poland", "spain"])
    slack.revoke_token(BOT_TOKEN)
    raise_alert(ops_bot, 2)
    ops_bot.deliver()

    state = health(ops_bot)
    assert state["status"] == "degraded"
    assert any("token_revoked" in str(reason) and "reinstall" in str(reason) for reason in state["reasons"])  # type: ignore[attr-defined]
    ops_bot.advance(minutes=5)
    ops_bot.deliver()
    notes = [m for m in ops_bot.rows(OutboxMessage) if m.purpose == "issue_report"]
    assert len(notes) == 1  # told once, however many calls failed
    assert all(m.status == OutboxStatus.PENDING for m in ops_bot.rows(OutboxMessage))

    slack.restore_token(BOT_TOKEN)  # an admin fixed the installation
    ops_bot.advance(minutes=1)
    ops_bot.deliver()
    for channel in channels:
        assert len(slack.posted(channel)) == 1
    assert any("token_revoked" in m["text"] for m in slack.posted(OPS_CHANNEL))
    assert health(ops_bot) == {"status": "ok", "reasons": []}


def test_a_notice_reaches_46_channels_through_parallel_calls(
    ops_bot: RunningBot, slack: SlackStandIn
) -> None:
    slack.delay(0.1, "chat.postMessage")
    countries = [country.code for country in all_countries()[:46]]
    channels = link(ops_bot, countries)
    raise_alert(ops_bot, 46)
    ops_bot.deliver()
    for channel in channels:
        [notice] = slack.posted(channel)
        assert notice["blocks"][-1]["elements"][0]["text"]["text"].startswith("Acknowledge")
    assert slack.max_in_flight > 1
