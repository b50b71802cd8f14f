"""Setting Liaison up in a real workspace: linking checks that the bot is in the channel, and liaison
officers from other organisations (Slack Connect, `W…` ids, their own `team_id`) work like anyone."""

from __future__ import annotations

from typing import Any

import pytest

from bot.slack_reads import SlackChannels
from commands.alert import ACTION_ACK
from storage.models import Acknowledgement, ChannelLink, LiaisonAssignment, Movement
from tests.support.bot import RunningBot, reply_text
from tests.support.meanwhile import TypedMeanwhile
from tests.support.slack_standin import TEAM_ID

ADMIN = "UADMIN"
FOREIGN = "W0FOREIGN1"  # a Polish officer from the Polish police's own Slack organisation
FOREIGN_TEAM = "T0POLICEPL"


def link(bot: RunningBot, channel: str = "C0POLAND") -> dict[str, Any]:
    return bot.reply("/liaison", "link poland", user_id=ADMIN, channel_id=channel)


def not_member(_: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "channel": {"id": "C0POLAND", "is_channel": True, "is_member": False}}


def test_link_asks_slack_whether_the_bot_is_in_the_channel(bot: RunningBot) -> None:
    body = link(bot)
    assert body["response_type"] == "in_channel"
    [call] = bot.slack.calls("conversations.info")
    assert call.params["channel"] == "C0POLAND"
    assert "Liaison is a member of this channel" in reply_text(body)
    assert bot.count(ChannelLink) == 1


def test_link_in_a_public_channel_without_the_bot_says_invite(bot: RunningBot) -> None:
    bot.slack.set_response("conversations.info", not_member)
    body = link(bot)
    assert body["response_type"] == "ephemeral"
    assert "Liaison is not a member of this channel" in reply_text(body)
    assert "/invite @liaison" in reply_text(body)
    assert bot.count(ChannelLink) == 0


def test_link_in_a_private_channel_without_the_bot_says_invite(bot: RunningBot) -> None:
    bot.slack.fail("conversations.info", status=200, error="channel_not_found")
    body = link(bot, "G0PRIVATE")
    assert "/invite @liaison" in reply_text(body)
    assert bot.count(ChannelLink) == 0


@pytest.mark.parametrize("failure", [{"status": 500}, {"status": 200, "error": "missing_scope"}])
def test_link_goes_ahead_when_slack_cannot_tell(bot: RunningBot, failure: dict[str, Any]) -> None:
    bot.slack.fail("conversations.info", **failure)
    body = link(bot)
    assert body["response_type"] == "in_channel"
    assert "could not be asked whether Liaison is a member" in reply_text(body)
    assert bot.count(ChannelLink) == 1


def test_no_command_waits_while_slack_is_asked_about_a_channel(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_ask = SlackChannels.bot_is_member
    meanwhile = TypedMeanwhile(bot, "/arrivals", "spain 2", user_id=ADMIN, channel_id="COPS")

    def slow_slack(channels: SlackChannels, channel_id: str) -> bool | None:
        meanwhile.type_once()  # while Slack takes its time to answer
        return real_ask(channels, channel_id)

    monkeypatch.setattr(SlackChannels, "bot_is_member", slow_slack)
    body = link(bot)
    assert "Liaison is a member of this channel" in reply_text(body)
    assert meanwhile.reply is not None
    assert "Spain: 2 arrived" in reply_text(meanwhile.reply)  # at once, not "busy" after the lock timeout
    assert bot.count(ChannelLink) == 1


def test_a_direct_message_cannot_be_linked(bot: RunningBot) -> None:
    body = link(bot, "D0ANNA")
    assert "direct message cannot be a liaison channel" in reply_text(body)
    assert bot.slack.calls("conversations.info") == []
    assert bot.count(ChannelLink) == 0


def test_a_liaison_from_another_organisation_is_assigned_records_and_acknowledges(bot: RunningBot) -> None:
    assert (
        bot.reply("/liaison", f"assign <@{FOREIGN}|jan> poland", user_id=ADMIN)["response_type"]
        == "in_channel"
    )
    link(bot)
    [assignment] = bot.rows(LiaisonAssignment)
    assert assignment.user_id == FOREIGN

    arrived = bot.reply("/arrivals", "poland 12", user_id=FOREIGN, team_id=FOREIGN_TEAM)
    assert arrived["response_type"] == "in_channel", reply_text(arrived)
    [movement] = bot.rows(Movement)
    assert movement.recorded_by == FOREIGN
    # The host's own staff are refused once Poland has a liaison; the foreign officer is not.
    refused = bot.reply("/arrivals", "poland 1", user_id="U0SOMEONE", team_id=TEAM_ID)
    assert refused["response_type"] == "ephemeral"

    raised = bot.reply("/alert", "raise urgence credible threat", user_id=ADMIN, channel_id="C0OPS")
    assert raised["response_type"] == "in_channel", reply_text(raised)
    bot.deliver()
    [notice] = [c for c in bot.slack.calls("chat.postMessage") if c.channel == "C0POLAND"]
    [button] = [
        e for b in notice.params["blocks"] if b.get("type") == "actions" for e in b["elements"]
        if e.get("action_id") == ACTION_ACK
    ]  # fmt: skip
    response = bot.client.post_action(
        ACTION_ACK,
        button["value"],
        user_id=FOREIGN,
        team_id=FOREIGN_TEAM,
        channel_id="C0POLAND",
        message_ts="1700000000.000100",
        response_url=bot.slack.response_url("ack"),
    )
    assert response.status_code == 200
    [ack] = bot.rows(Acknowledgement)
    assert (ack.country, ack.user_id) == ("PL", FOREIGN)


def test_an_enterprise_grid_user_can_act(bot: RunningBot) -> None:
    body = bot.reply("/deployment", "", user_id="W0GRIDUSER", team_id="T0GRIDWS", enterprise_id="E0GRID")
    assert body["response_type"] in ("ephemeral", "in_channel")
    assert "Something went wrong" not in reply_text(body)


def test_the_events_url_answers_slacks_signed_challenge(bot: RunningBot) -> None:
    body = bot.client.factory.url_verification("3eZbrw1aBm2rZgRNFdxV2595E9CY")
    response = bot.client.post_signed(body, content_type="application/json")
    assert response.status_code == 200
    assert "3eZbrw1aBm2rZgRNFdxV2595E9CY" in response.text
