"""Issue 3 end to end: roles, alert notices, acknowledgements, reminders and the outbox.

Everything goes through the bot's real HTTP endpoint with signed requests; Slack is the stand-in.
The clock is frozen and moved by the tests; the outbox is delivered when a test calls `deliver()`.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import event
from sqlmodel import SQLModel

from bot import scheduler
from commands.alert import ACTION_ACK
from storage import outbox
from storage.models import (
    Acknowledgement,
    AlertNotice,
    ChannelLink,
    LiaisonAssignment,
    Movement,
    OutboxMessage,
    OutboxStatus,
    Pledge,
    UserRole,
)
from tests.support.bot import RunningBot, reply_text, running_bot, transactions_beyond_the_replay_guard
from tests.support.slack_standin import Call, SlackStandIn

ADMIN = "UADMIN"
OPS = "U0OPS"
PL1 = "U0PL1"
PL2 = "U0PL2"
ES1 = "U0ES1"
IT1 = "U0IT1"
BOB = "U0BOB"
OPS_CHANNEL = "COPS"
CHANNELS = {"PL": "C0PL", "ES": "C0ES", "IT": "C0IT"}
LIAISONS = {PL1: "poland", PL2: "poland", ES1: "spain", IT1: "italy"}
REASON = "credible threat against the opening ceremony"


def at(user_id: str, name: str = "someone") -> str:
    """A user mention as Slack sends it in slash-command text (with should_escape)."""
    return f"<@{user_id}|{name}>"


# -- what Slack received -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Posted:
    channel: str
    ts: str
    params: dict[str, Any]


class PostLog:
    """Answers chat.postMessage like Slack, remembering the ts handed out for each message."""

    def __init__(self, slack: SlackStandIn) -> None:
        self._counter = itertools.count(1)
        self.posts: list[Posted] = []
        slack.set_response("chat.postMessage", self._answer)

    def _answer(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel"))
        ts = f"1784530800.{next(self._counter):06d}"
        self.posts.append(Posted(channel, ts, params))
        return {"ok": True, "channel": channel, "ts": ts, "message": {"ts": ts, "text": params.get("text")}}

    def in_channel(self, channel: str) -> list[Posted]:
        return [post for post in self.posts if post.channel == channel]


def readable(params: dict[str, Any]) -> str:
    """All a reader sees of a message: fallback text, blocks and attachments."""
    return (
        str(params.get("text", ""))
        + "\n"
        + json.dumps(params.get("blocks", []), ensure_ascii=False)
        + json.dumps(params.get("attachments", []), ensure_ascii=False)
    )


def ack_buttons(params: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        element
        for block in params.get("blocks", [])
        if block.get("type") == "actions"
        for element in block.get("elements", [])
        if element.get("action_id") == ACTION_ACK
    ]


def maybe_notice_number(params: dict[str, Any]) -> int | None:
    """The number of the notice a message is (a notice or the ops tracker), else None."""
    match = re.search(r"Notice #(\d+)", readable(params))
    return int(match.group(1)) if match else None


def notice_number(params: dict[str, Any]) -> int:
    number = maybe_notice_number(params)
    assert number is not None, readable(params)
    return number


def updates(slack: SlackStandIn, channel: str) -> list[Call]:
    return slack.calls("chat.update", channel)


def responses(slack: SlackStandIn, token: str) -> list[Call]:
    return [call for call in slack.calls("response_url") if call.method == f"response_url:{token}"]


def counts(bot: RunningBot) -> dict[str, int]:
    tables: list[type[SQLModel]] = [
        UserRole,
        LiaisonAssignment,
        ChannelLink,
        AlertNotice,
        Acknowledgement,
        OutboxMessage,
        Pledge,
        Movement,
    ]
    return {table.__name__: bot.count(table) for table in tables}


def open_outbox(bot: RunningBot) -> int:
    with bot.runtime.db.session() as session:
        return outbox.pending_count(session)


# -- driving the bot ---------------------------------------------------------------------------------


def ok(body: dict[str, Any]) -> str:
    text = reply_text(body)
    assert ":warning:" not in text, text
    return text


def set_up_directory(bot: RunningBot) -> None:
    """Ops, four liaisons and three linked channels (Poland, Spain, Italy)."""
    ok(bot.reply("/liaison", f"role {at(OPS, 'ops')} ops", user_id=ADMIN))
    for user, country in LIAISONS.items():
        ok(bot.reply("/liaison", f"assign {at(user)} {country}", user_id=ADMIN))
    for country, channel in (("poland", "C0PL"), ("spain", "C0ES"), ("italy", "C0IT")):
        ok(bot.reply("/liaison", f"link {country}", user_id=ADMIN, channel_id=channel))


def raise_alert(bot: RunningBot, level: str = "urgence", reason: str = REASON, verb: str = "raise") -> str:
    body = bot.reply("/alert", f"{verb} {level} {reason}", user_id=OPS, channel_id=OPS_CHANNEL)
    assert body["response_type"] == "in_channel", reply_text(body)
    return reply_text(body)


def press(
    bot: RunningBot, notice_id: int, *, user_id: str, channel_id: str, message_ts: str, token: str
) -> None:
    response = bot.client.post_action(
        ACTION_ACK,
        str(notice_id),
        user_id=user_id,
        channel_id=channel_id,
        message_ts=message_ts,
        response_url=bot.slack.response_url(token),
    )
    assert response.status_code == 200, response.text


def the_notice(bot: RunningBot) -> AlertNotice:
    [notice] = bot.rows(AlertNotice)
    assert isinstance(notice, AlertNotice)
    return notice


@pytest.fixture
def log(slack: SlackStandIn) -> PostLog:
    return PostLog(slack)


@pytest.fixture
def ops_bot(sqlite_url: str, slack: SlackStandIn, signing_secret: str, log: PostLog) -> Iterator[RunningBot]:
    with running_bot(sqlite_url, slack, signing_secret, ops_channel=OPS_CHANNEL) as running:
        yield running


@pytest.fixture
def any_ops_bot(
    migrated_database_url: str, slack: SlackStandIn, signing_secret: str, log: PostLog
) -> Iterator[RunningBot]:
    """The bot with an ops channel, on SQLite and on PostgreSQL."""
    with running_bot(migrated_database_url, slack, signing_secret, ops_channel=OPS_CHANNEL) as running:
        yield running


@pytest.fixture
def alerted(ops_bot: RunningBot) -> RunningBot:
    """Directory set up, an `urgence` notice raised at START and delivered."""
    set_up_directory(ops_bot)
    raise_alert(ops_bot)
    ops_bot.deliver()
    return ops_bot


# -- roles and refusals ------------------------------------------------------------------------------


def test_admin_grants_ops_and_who_shows_it(ops_bot: RunningBot) -> None:
    body = ops_bot.reply("/liaison", f"role {at(OPS, 'ops')} ops", user_id=ADMIN)
    assert "<@U0OPS> is now *ops*" in reply_text(body)
    [role] = ops_bot.rows(UserRole)
    assert (role.user_id, role.role, role.granted_by) == (OPS, "ops", ADMIN)
    who = reply_text(ops_bot.reply("/liaison", "who", user_id=BOB))
    assert "Ops: <@U0OPS>" in who
    assert "<@UADMIN>" in who

    body = ops_bot.reply("/liaison", f"role {at(OPS, 'ops')} none", user_id=ADMIN)
    assert "<@U0OPS> has no role any more" in reply_text(body)
    assert ops_bot.rows(UserRole) == []


@pytest.mark.parametrize("caller", [BOB, OPS])
def test_only_admins_grant_roles(ops_bot: RunningBot, caller: str) -> None:
    ok(ops_bot.reply("/liaison", f"role {at(OPS, 'ops')} ops", user_id=ADMIN))
    before = counts(ops_bot)
    body = ops_bot.reply("/liaison", f"role {at(BOB, 'bob')} admin", user_id=caller)
    text = reply_text(body)
    assert body["response_type"] == "ephemeral"
    assert "Only an admin can grant roles." in text
    assert "Admins: <@UADMIN>" in text
    assert counts(ops_bot) == before
    assert [(r.user_id, r.role) for r in ops_bot.rows(UserRole)] == [(OPS, "ops")]


def test_assign_link_who_unassign_unlink(ops_bot: RunningBot) -> None:
    body = ops_bot.reply("/liaison", f"assign {at(PL1, 'anna')} poland", user_id=ADMIN)
    assert body["response_type"] == "in_channel"
    assert "<@U0PL1> is now a liaison officer for *Poland*" in reply_text(body)
    [assignment] = ops_bot.rows(LiaisonAssignment)
    assert (assignment.user_id, assignment.country, assignment.assigned_by) == (PL1, "PL", ADMIN)

    again = reply_text(ops_bot.reply("/liaison", f"assign {at(PL1, 'anna')} poland", user_id=ADMIN))
    assert "already a liaison for Poland" in again
    assert ops_bot.count(LiaisonAssignment) == 1

    body = ops_bot.reply("/liaison", "link poland", user_id=ADMIN, channel_id="C0PL")
    assert "This channel is now *Poland*'s liaison channel" in reply_text(body)
    [link] = ops_bot.rows(ChannelLink)
    assert (link.channel_id, link.country, link.linked_by) == ("C0PL", "PL", ADMIN)

    who = reply_text(ops_bot.reply("/liaison", "who poland", user_id=BOB))
    assert "*Poland* — <@U0PL1> · <#C0PL>" in who
    who_all = reply_text(ops_bot.reply("/liaison", "who", user_id=BOB))
    assert "*Poland* — <@U0PL1> · <#C0PL>" in who_all
    assert "Spain" not in who_all
    who_spain = reply_text(ops_bot.reply("/liaison", "who spain", user_id=BOB))
    assert "no liaison assigned" in who_spain
    assert "no channel linked" in who_spain

    body = ops_bot.reply("/liaison", f"unassign {at(PL1, 'anna')} poland", user_id=ADMIN)
    assert "<@U0PL1> is no longer a liaison officer for Poland" in reply_text(body)
    assert ops_bot.rows(LiaisonAssignment) == []
    missing = reply_text(ops_bot.reply("/liaison", f"unassign {at(PL1, 'anna')} poland", user_id=ADMIN))
    assert "is not a liaison for Poland" in missing

    body = ops_bot.reply("/liaison", "unlink", user_id=ADMIN, channel_id="C0PL")
    assert "no longer Poland's liaison channel" in reply_text(body)
    assert ops_bot.rows(ChannelLink) == []
    elsewhere = reply_text(ops_bot.reply("/liaison", "unlink", user_id=ADMIN, channel_id="C0PL"))
    assert "not linked to any country" in elsewhere


def test_relinking_a_channel_moves_it_to_the_new_country(ops_bot: RunningBot) -> None:
    ok(ops_bot.reply("/liaison", "link poland", user_id=ADMIN, channel_id="C0PL"))
    body = ops_bot.reply("/liaison", "link spain", user_id=ADMIN, channel_id="C0PL")
    assert "*Spain*'s liaison channel (it was Poland's)" in reply_text(body)
    assert [(link.channel_id, link.country) for link in ops_bot.rows(ChannelLink)] == [("C0PL", "ES")]


@pytest.mark.parametrize(
    ("text", "channel"),
    [
        (f"assign {at(PL1)} poland", "C0X"),
        (f"unassign {at(PL1)} poland", "C0X"),
        ("link poland", "C0NEW"),
        ("unlink", "C0PL"),
    ],
)
def test_non_admins_cannot_change_the_directory(ops_bot: RunningBot, text: str, channel: str) -> None:
    set_up_directory(ops_bot)
    before = counts(ops_bot)
    for caller in (BOB, OPS, PL1):
        reply = reply_text(ops_bot.reply("/liaison", text, user_id=caller, channel_id=channel))
        assert "Only an admin can" in reply
        assert "Admins: <@UADMIN>" in reply
    assert counts(ops_bot) == before


@pytest.mark.parametrize(
    "text", ["assign @bob poland", "role @bob ops", "unassign @bob poland", "assign bob poland"]
)
def test_a_display_name_is_not_a_mention(ops_bot: RunningBot, text: str) -> None:
    before = counts(ops_bot)
    reply = reply_text(ops_bot.reply("/liaison", text, user_id=ADMIN))
    assert "is not a Slack mention" in reply
    assert "pick the person from Slack's list" in reply
    assert counts(ops_bot) == before


def test_a_forged_mention_never_becomes_a_mention(ops_bot: RunningBot) -> None:
    reply = reply_text(ops_bot.reply("/liaison", "assign <!channel> poland", user_id=ADMIN))
    assert "is not a Slack mention" in reply
    assert "<!channel>" not in reply
    assert ops_bot.count(LiaisonAssignment) == 0


@pytest.mark.parametrize("caller", [BOB, PL1])
def test_only_ops_raise_the_alert_level(ops_bot: RunningBot, log: PostLog, caller: str) -> None:
    set_up_directory(ops_bot)
    before = counts(ops_bot)
    body = ops_bot.reply("/alert", f"raise urgence {REASON}", user_id=caller, channel_id="C0PL")
    text = reply_text(body)
    assert body["response_type"] == "ephemeral"
    assert "Only the operations centre (ops) or an admin can raise or lower the alert level." in text
    assert "<@U0OPS>" in text
    assert "<@UADMIN>" in text
    assert counts(ops_bot) == before
    ops_bot.deliver()
    assert log.posts == []


def test_an_admin_may_raise_the_alert_level(ops_bot: RunningBot) -> None:
    set_up_directory(ops_bot)
    body = ops_bot.reply("/alert", f"raise urgence {REASON}", user_id=ADMIN, channel_id=OPS_CHANNEL)
    assert body["response_type"] == "in_channel"
    assert ops_bot.count(AlertNotice) == 1


def test_only_ops_record_pledges(ops_bot: RunningBot) -> None:
    set_up_directory(ops_bot)
    before = counts(ops_bot)
    for caller in (BOB, PL1):
        text = reply_text(ops_bot.reply("/pledge", "poland 120", user_id=caller, channel_id="C0PL"))
        assert "Only the operations centre (ops) or an admin can record pledges." in text
        assert "<@U0OPS>" in text
    assert counts(ops_bot) == before
    body = ops_bot.reply("/pledge", "poland 120", user_id=OPS, channel_id=OPS_CHANNEL)
    assert body["response_type"] == "in_channel"
    [pledge] = ops_bot.rows(Pledge)
    assert (pledge.country, pledge.headcount, pledge.recorded_by) == ("PL", 120, OPS)


def test_movements_belong_to_the_country_liaisons_once_assigned(ops_bot: RunningBot) -> None:
    ok(ops_bot.reply("/liaison", f"role {at(OPS, 'ops')} ops", user_id=ADMIN))
    # Nobody is Poland's liaison yet: anybody may record.
    body = ops_bot.reply("/arrivals", "poland 4", user_id=BOB, channel_id="C0PL")
    assert body["response_type"] == "in_channel", reply_text(body)
    assert ops_bot.count(Movement) == 1

    ok(ops_bot.reply("/liaison", f"assign {at(PL1, 'anna')} poland", user_id=ADMIN))
    before = counts(ops_bot)
    refused = reply_text(ops_bot.reply("/arrivals", "poland 5", user_id=BOB, channel_id="C0PL"))
    assert "Only Poland's liaison officers, ops or an admin can record Poland's movements." in refused
    assert "Poland's liaisons: <@U0PL1>" in refused
    refused = reply_text(ops_bot.reply("/departures", "poland 1", user_id=BOB, channel_id="C0PL"))
    assert "Only Poland's liaison officers" in refused
    assert counts(ops_bot) == before

    for caller, count in ((PL1, 6), (OPS, 7), (ADMIN, 8)):
        body = ops_bot.reply("/arrivals", f"poland {count}", user_id=caller, channel_id="C0PL")
        assert body["response_type"] == "in_channel", reply_text(body)
    # Spain has no liaison: still open to anybody.
    assert ops_bot.reply("/arrivals", "spain 9", user_id=BOB)["response_type"] == "in_channel"
    assert sorted((m.country, m.count, m.recorded_by) for m in ops_bot.rows(Movement)) == [
        ("ES", 9, BOB),
        ("PL", 4, BOB),
        ("PL", 6, PL1),
        ("PL", 7, OPS),
        ("PL", 8, ADMIN),
    ]


def test_anybody_may_read_the_alert_level(alerted: RunningBot) -> None:
    for caller in (BOB, PL1):
        assert "Urgence attentat" in reply_text(alerted.reply("/alert", "", user_id=caller))
        assert "Alert notice #1" in reply_text(alerted.reply("/alert", "status", user_id=caller))


# -- raising and lowering ----------------------------------------------------------------------------


def test_raise_sends_one_notice_per_linked_channel_and_a_tracker_to_ops(
    any_ops_bot: RunningBot, slack: SlackStandIn, log: PostLog
) -> None:
    bot = any_ops_bot
    set_up_directory(bot)
    text = raise_alert(bot)
    assert "Alert level raised to *Urgence attentat* by <@U0OPS>" in text
    assert "3 liaison channels (3 countries)" in text
    notice = the_notice(bot)
    assert (notice.level, notice.previous_level, notice.reason, notice.set_by) == (
        "urgence",
        "vigilance",
        REASON,
        OPS,
    )
    assert log.posts == []  # delivered by the outbox, not from the request

    bot.deliver()
    names = {"C0PL": "Poland", "C0ES": "Spain", "C0IT": "Italy"}
    for channel, name in names.items():
        [post] = log.in_channel(channel)
        assert "Alert level raised: Urgence attentat" in readable(post.params)
        assert REASON in readable(post.params)
        [button] = ack_buttons(post.params)
        assert button["value"] == str(notice.id)
        assert button["text"]["text"] == f"Acknowledge for {name}"
    [tracker] = log.in_channel(OPS_CHANNEL)
    assert ack_buttons(tracker.params) == []
    assert "Acknowledged by *0 of 3 countries*" in readable(tracker.params)
    assert "Waiting for: Italy, Poland, Spain" in readable(tracker.params)
    assert len(slack.calls("chat.postMessage")) == 4
    assert bot.deliver() == 0
    assert len(slack.calls("chat.postMessage")) == 4


def test_raise_with_no_linked_channel_says_so(ops_bot: RunningBot) -> None:
    ok(ops_bot.reply("/liaison", f"role {at(OPS, 'ops')} ops", user_id=ADMIN))
    text = raise_alert(ops_bot)
    assert "No liaison channel is linked yet" in text


@pytest.mark.parametrize("text", ["raise urgence", "raise urgence ok", "set urgence   "])
def test_a_reason_is_required(ops_bot: RunningBot, log: PostLog, text: str) -> None:
    set_up_directory(ops_bot)
    before = counts(ops_bot)
    reply = reply_text(ops_bot.reply("/alert", text, user_id=OPS, channel_id=OPS_CHANNEL))
    assert "A reason is required" in reply
    assert counts(ops_bot) == before
    ops_bot.deliver()
    assert log.posts == []


def test_a_reason_has_a_maximum_length(ops_bot: RunningBot) -> None:
    set_up_directory(ops_bot)
    reply = reply_text(ops_bot.reply("/alert", "raise urgence " + "x" * 501, user_id=OPS))
    assert "The reason is too long (501 characters, at most 500)" in reply
    assert ops_bot.count(AlertNotice) == 0


def test_an_unknown_level_lists_the_levels(ops_bot: RunningBot) -> None:
    set_up_directory(ops_bot)
    reply = reply_text(ops_bot.reply("/alert", f"raise red {REASON}", user_id=OPS))
    assert "There is no alert level `red`" in reply
    for key in ("`vigilance`", "`renforcee`", "`urgence`"):
        assert key in reply
    assert reply.index("`vigilance`") < reply.index("`renforcee`") < reply.index("`urgence`")
    assert ops_bot.count(AlertNotice) == 0
    missing = reply_text(ops_bot.reply("/alert", "raise", user_id=OPS))
    assert "Which level?" in missing
    assert "`urgence`" in missing


def test_levels_move_only_in_the_direction_asked(alerted: RunningBot, log: PostLog) -> None:
    before = counts(alerted)
    posted = len(log.posts)
    lower_by_raise = reply_text(alerted.reply("/alert", f"raise renforcee {REASON}", user_id=OPS))
    assert "lower than the current *Urgence attentat*: use `/alert lower`" in lower_by_raise
    same = reply_text(alerted.reply("/alert", f"raise urgence {REASON}", user_id=OPS))
    assert "already *Urgence attentat*" in same
    higher_by_lower = reply_text(alerted.reply("/alert", f"lower urgence {REASON}", user_id=OPS))
    assert "already *Urgence attentat*" in higher_by_lower
    assert counts(alerted) == before
    alerted.deliver()
    assert len(log.posts) == posted


def test_lower_is_refused_when_it_would_go_up(ops_bot: RunningBot) -> None:
    set_up_directory(ops_bot)
    raise_alert(ops_bot, level="renforcee")
    reply = reply_text(ops_bot.reply("/alert", f"lower urgence {REASON}", user_id=OPS))
    assert "higher than the current" in reply
    assert "use `/alert raise`" in reply
    assert ops_bot.count(AlertNotice) == 1


def test_alert_shows_the_current_level(alerted: RunningBot, log: PostLog) -> None:
    text = reply_text(alerted.reply("/alert", "", user_id=BOB))
    assert "The alert level is *Urgence attentat* since 09:00 (Europe/Paris), set by <@U0OPS>" in text
    assert f"*Reason:* {REASON}" in text
    assert "Acknowledged by 0 of 3 countries" in text

    alerted.advance(minutes=2)
    ok(alerted.reply("/alert", "ack", user_id=ES1, channel_id="C0ES"))
    text = reply_text(alerted.reply("/alert", "", user_id=BOB))
    assert "Acknowledged by 1 of 3 countries" in text


def test_alert_before_any_notice(ops_bot: RunningBot) -> None:
    text = reply_text(ops_bot.reply("/alert", "", user_id=BOB))
    assert "The alert level is *Vigilance* (no notice has been issued yet)" in text
    status = reply_text(ops_bot.reply("/alert", "status", user_id=BOB))
    assert "No alert notice has been issued yet." in status
    ack = reply_text(ops_bot.reply("/alert", "ack", user_id=BOB))
    assert "There is no alert notice to acknowledge." in ack


def test_lower_sends_a_new_notice_everywhere(alerted: RunningBot, log: PostLog) -> None:
    alerted.advance(hours=3)
    text = raise_alert(alerted, level="vigilance", reason="threat neutralised", verb="lower")
    assert "Alert level lowered to *Vigilance* by <@U0OPS>" in text
    alerted.deliver()
    first, second = (notice.id for notice in alerted.rows(AlertNotice))
    for channel in CHANNELS.values():
        posts = log.in_channel(channel)
        assert [notice_number(p.params) for p in posts] == [first, second]
        assert "Alert level lowered: Vigilance" in readable(posts[1].params)
        assert "(was Urgence attentat)" in readable(posts[1].params)
        assert "threat neutralised" in readable(posts[1].params)
        assert [b["value"] for b in ack_buttons(posts[1].params)] == [str(second)]
    assert len(log.in_channel(OPS_CHANNEL)) == 2
    assert "Vigilance since 12:00" in reply_text(alerted.reply("/alert", "", user_id=BOB)).replace("*", "")


def test_set_moves_either_way(alerted: RunningBot) -> None:
    text = raise_alert(alerted, level="renforcee", reason="downgraded by the ministry", verb="set")
    assert "Alert level set to *Sécurité renforcée – risque attentat*" in text
    assert alerted.count(AlertNotice) == 2


# -- acknowledging -----------------------------------------------------------------------------------


def test_the_button_records_the_acknowledgement_and_edits_the_notice(
    any_ops_bot: RunningBot, slack: SlackStandIn, log: PostLog
) -> None:
    bot = any_ops_bot
    set_up_directory(bot)
    raise_alert(bot)
    bot.deliver()
    [notice] = log.in_channel("C0PL")
    [tracker] = log.in_channel(OPS_CHANNEL)
    [button] = ack_buttons(notice.params)

    bot.advance(minutes=2)
    press(bot, int(button["value"]), user_id=PL1, channel_id="C0PL", message_ts=notice.ts, token="pl1")
    [ack] = bot.rows(Acknowledgement)
    assert (ack.notice_id, ack.country, ack.user_id, ack.channel_id) == (
        int(button["value"]),
        "PL",
        PL1,
        "C0PL",
    )

    bot.deliver()
    [edit] = updates(slack, "C0PL")
    assert (edit.params["channel"], edit.params["ts"]) == ("C0PL", notice.ts)
    assert "Acknowledged for *Poland* by <@U0PL1> at 09:02" in readable(edit.params)
    assert ack_buttons(edit.params) == []
    assert REASON in readable(edit.params)

    [tracker_edit] = updates(slack, OPS_CHANNEL)
    assert tracker_edit.params["ts"] == tracker.ts
    assert "Acknowledged by *1 of 3 countries*" in readable(tracker_edit.params)
    assert "Waiting for: Italy, Spain" in readable(tracker_edit.params)
    assert updates(slack, "C0ES") == []
    assert updates(slack, "C0IT") == []
    assert responses(slack, "pl1") == []  # nothing ephemeral: the edited notice says it


def test_double_clicks_and_two_liaisons_give_one_acknowledgement(
    any_ops_bot: RunningBot, slack: SlackStandIn, log: PostLog
) -> None:
    bot = any_ops_bot
    set_up_directory(bot)
    raise_alert(bot)
    bot.deliver()
    [notice] = log.in_channel("C0PL")
    notice_id = int(ack_buttons(notice.params)[0]["value"])

    presses = [(PL1, "pl1-a"), (PL1, "pl1-b"), (PL2, "pl2-a"), (PL2, "pl2-b"), (PL1, "pl1-c")]
    with ThreadPoolExecutor(max_workers=len(presses)) as pool:
        list(
            pool.map(
                lambda p: press(
                    bot, notice_id, user_id=p[0], channel_id="C0PL", message_ts=notice.ts, token=p[1]
                ),
                presses,
            )
        )
    [ack] = bot.rows(Acknowledgement)
    assert ack.country == "PL"
    assert ack.user_id in (PL1, PL2)

    bot.deliver()
    [edit] = updates(slack, "C0PL")
    assert edit.params["ts"] == notice.ts
    assert f"Acknowledged for *Poland* by <@{ack.user_id}>" in readable(edit.params)
    assert len(updates(slack, OPS_CHANNEL)) == 1
    answered = [token for _, token in presses if responses(slack, token)]
    assert len(answered) == len(presses) - 1  # all but the winner are told it was already done
    for token in answered:
        [answer] = responses(slack, token)
        assert "Poland already acknowledged notice" in readable(answer.params)
        assert answer.params["replace_original"] is False

    press(bot, notice_id, user_id=PL2, channel_id="C0PL", message_ts=notice.ts, token="late")
    bot.deliver()
    assert bot.count(Acknowledgement) == 1
    assert len(updates(slack, "C0PL")) == 1


def test_a_non_liaison_cannot_acknowledge(alerted: RunningBot, slack: SlackStandIn, log: PostLog) -> None:
    [notice] = log.in_channel("C0PL")
    notice_id = int(ack_buttons(notice.params)[0]["value"])
    for user, token in ((BOB, "bob"), (ES1, "es1")):
        press(alerted, notice_id, user_id=user, channel_id="C0PL", message_ts=notice.ts, token=token)
    assert alerted.count(Acknowledgement) == 0
    alerted.deliver()
    for token in ("bob", "es1"):
        [answer] = responses(slack, token)
        text = readable(answer.params)
        assert "Only Poland's liaison officers, ops or an admin can acknowledge for Poland." in text
        assert "<@U0PL1>" in text
        assert "<@U0PL2>" in text
        assert answer.params["response_type"] == "ephemeral"
        assert answer.params["replace_original"] is False
    assert slack.calls("chat.update") == []

    ops = reply_text(alerted.reply("/alert", "ack", user_id=BOB, channel_id="C0PL"))
    assert "Only Poland's liaison officers" in ops
    assert alerted.count(Acknowledgement) == 0


def test_ops_acknowledge_on_behalf_of_a_country_and_it_shows(
    alerted: RunningBot, slack: SlackStandIn, log: PostLog
) -> None:
    [notice] = log.in_channel("C0IT")
    alerted.advance(minutes=3)
    press(alerted, 1, user_id=OPS, channel_id="C0IT", message_ts=notice.ts, token="ops")
    [ack] = alerted.rows(Acknowledgement)
    assert (ack.country, ack.user_id, ack.on_behalf) == ("IT", OPS, True)

    alerted.deliver()
    [edit] = updates(slack, "C0IT")
    assert "Acknowledged on behalf of *Italy* by <@U0OPS> at 09:03" in readable(edit.params)
    assert "not one of Italy's liaison officers" in readable(edit.params)
    [tracker_edit] = updates(slack, OPS_CHANNEL)
    assert "Acknowledged by *1 of 3 countries*. (1 on their behalf by ops.)" in readable(tracker_edit.params)
    status = reply_text(alerted.reply("/alert", "status", user_id=OPS))
    assert ":white_check_mark: on its behalf by <@U0OPS> at 09:03" in status_line(status, "Italy")


def test_a_liaison_acknowledges_as_the_country_itself(alerted: RunningBot, slack: SlackStandIn) -> None:
    body = alerted.reply("/alert", "ack", user_id=PL1, channel_id="C0PL")
    assert "acknowledged notice #1 for *Poland*" in reply_text(body)
    [ack] = alerted.rows(Acknowledgement)
    assert ack.on_behalf is False


def test_slash_ack_by_ops_says_on_behalf(alerted: RunningBot) -> None:
    body = alerted.reply("/alert", "ack", user_id=ADMIN, channel_id="C0ES")
    assert body["response_type"] == "in_channel"
    assert "<@UADMIN> acknowledged notice #1 *on behalf of Spain*" in reply_text(body)
    [ack] = alerted.rows(Acknowledgement)
    assert (ack.country, ack.on_behalf) == ("ES", True)


def test_an_acknowledgement_is_one_transaction(alerted: RunningBot, log: PostLog) -> None:
    [notice] = log.in_channel("C0PL")
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    for user, token in ((BOB, "bob"), (PL1, "pl1")):  # a refusal answered, then an acknowledgement
        statements.clear()
        event.listen(alerted.runtime.db.engine, "before_cursor_execute", seen)
        try:
            press(alerted, 1, user_id=user, channel_id="C0PL", message_ts=notice.ts, token=token)
        finally:
            event.remove(alerted.runtime.db.engine, "before_cursor_execute", seen)
        assert len(transactions_beyond_the_replay_guard(statements)) == 1, statements
    assert alerted.count(Acknowledgement) == 1
    alerted.deliver()
    assert "Only Poland's liaison officers" in readable(responses(alerted.slack, "bob")[0].params)


def test_slash_ack_in_the_channel_works_like_the_button(
    alerted: RunningBot, slack: SlackStandIn, log: PostLog
) -> None:
    [notice] = log.in_channel("C0ES")
    alerted.advance(minutes=4)
    body = alerted.reply("/alert", "ack", user_id=ES1, channel_id="C0ES")
    assert body["response_type"] == "in_channel"
    assert "<@U0ES1> acknowledged notice #1 for *Spain* at 09:04" in reply_text(body)
    [ack] = alerted.rows(Acknowledgement)
    assert (ack.country, ack.user_id, ack.channel_id) == ("ES", ES1, "C0ES")

    alerted.deliver()
    [edit] = updates(slack, "C0ES")
    assert (edit.params["channel"], edit.params["ts"]) == ("C0ES", notice.ts)
    assert "Acknowledged for *Spain* by <@U0ES1> at 09:04" in readable(edit.params)
    assert len(updates(slack, OPS_CHANNEL)) == 1

    again = alerted.reply("/alert", "ack", user_id=ES1, channel_id="C0ES")
    assert again["response_type"] == "ephemeral"
    assert "Spain already acknowledged notice #1: <@U0ES1> at 09:04" in reply_text(again)
    alerted.deliver()
    assert alerted.count(Acknowledgement) == 1
    assert len(updates(slack, "C0ES")) == 1


def test_slash_ack_in_an_unlinked_channel_is_an_error(alerted: RunningBot, slack: SlackStandIn) -> None:
    for channel in ("C0RANDOM", OPS_CHANNEL):
        text = reply_text(alerted.reply("/alert", "ack", user_id=PL1, channel_id=channel))
        assert "This channel is not a country's liaison channel." in text
        assert "/liaison link &lt;country&gt;" in text
    assert alerted.count(Acknowledgement) == 0
    extra = reply_text(alerted.reply("/alert", "ack now", user_id=PL1, channel_id="C0PL"))
    assert "takes nothing after it" in extra
    alerted.deliver()
    assert slack.calls("chat.update") == []


def test_a_superseded_notice_cannot_be_acknowledged(
    alerted: RunningBot, slack: SlackStandIn, log: PostLog
) -> None:
    [old] = log.in_channel("C0PL")
    raise_alert(alerted, level="vigilance", reason="threat neutralised", verb="lower")
    press(alerted, 1, user_id=PL1, channel_id="C0PL", message_ts=old.ts, token="old")
    assert alerted.count(Acknowledgement) == 0
    alerted.deliver()
    [answer] = responses(slack, "old")
    assert "Notice #1 was superseded by notice #2" in readable(answer.params)


def test_linking_a_channel_while_a_notice_is_current_sends_it(
    alerted: RunningBot, slack: SlackStandIn, log: PostLog
) -> None:
    [tracker] = log.in_channel(OPS_CHANNEL)
    alerted.advance(minutes=5)
    body = alerted.reply("/liaison", "link germany", user_id=ADMIN, channel_id="C0DE")
    assert "The current notice follows." in reply_text(body)
    alerted.deliver()
    [post] = log.in_channel("C0DE")
    assert notice_number(post.params) == 1
    [button] = ack_buttons(post.params)
    assert (button["value"], button["text"]["text"]) == ("1", "Acknowledge for Germany")
    [tracker_edit] = updates(slack, OPS_CHANNEL)
    assert tracker_edit.params["ts"] == tracker.ts
    assert "Acknowledged by *0 of 4 countries*" in readable(tracker_edit.params)
    assert "Waiting for: Germany, Italy, Poland, Spain" in readable(tracker_edit.params)

    # Germany has no liaison officer yet: a passer-by cannot acknowledge for it, ops can on its behalf.
    press(alerted, 1, user_id=BOB, channel_id="C0DE", message_ts=post.ts, token="bob")
    alerted.deliver()
    [refusal] = responses(slack, "bob")
    assert "Germany has no liaison officer yet: only ops or an admin can acknowledge for Germany." in (
        readable(refusal.params)
    )
    assert "/liaison assign @user &lt;country&gt;" in readable(refusal.params)
    assert alerted.count(Acknowledgement) == 0
    press(alerted, 1, user_id=OPS, channel_id="C0DE", message_ts=post.ts, token="de")
    alerted.deliver()
    [edit] = updates(slack, "C0DE")
    assert edit.params["ts"] == post.ts
    assert "Acknowledged on behalf of *Germany* by <@U0OPS>" in readable(edit.params)
    [ack] = alerted.rows(Acknowledgement)
    assert (ack.country, ack.user_id, ack.on_behalf) == ("DE", OPS, True)

    # Linking the same channel again sends nothing more.
    ok(alerted.reply("/liaison", "unlink", user_id=ADMIN, channel_id="C0DE"))
    again = reply_text(alerted.reply("/liaison", "link germany", user_id=ADMIN, channel_id="C0DE"))
    assert "The current notice follows." not in again
    alerted.deliver()
    assert len(log.in_channel("C0DE")) == 1


# -- the acknowledgement matrix ----------------------------------------------------------------------


def status_line(text: str, country: str) -> str:
    [line] = [line for line in text.split("\\n") if f"*{country}*" in line]
    return line


def test_status_shows_who_acknowledged_who_is_pending_and_what_failed(
    ops_bot: RunningBot, slack: SlackStandIn, log: PostLog
) -> None:
    set_up_directory(ops_bot)
    slack.set_channel_error("C0IT", "not_in_channel")
    raise_alert(ops_bot)
    ops_bot.deliver()
    assert log.in_channel("C0IT") == []
    [warning] = [p for p in log.in_channel(OPS_CHANNEL) if "could not deliver" in readable(p.params)]
    assert "<#C0IT>" in readable(warning.params)
    assert "`not_in_channel`" in readable(warning.params)
    assert "Invite Liaison to the channel" in readable(warning.params)
    [failed] = [m for m in ops_bot.rows(OutboxMessage) if m.status == OutboxStatus.FAILED]
    assert (failed.lane, failed.last_error) == ("C0IT", "not_in_channel")

    [pl_notice] = log.in_channel("C0PL")
    ops_bot.advance(minutes=3)
    press(ops_bot, 1, user_id=PL2, channel_id="C0PL", message_ts=pl_notice.ts, token="pl2")
    ops_bot.advance(minutes=9)

    status = ops_bot.reply("/alert", "status", user_id=BOB)
    assert status["response_type"] == "ephemeral"
    text = reply_text(status)
    assert "Alert notice #1 — Urgence attentat" in text
    assert "Acknowledged by *1 of 3 countries*" in text
    assert "issued 12 min ago" in text
    poland = status_line(text, "Poland")
    assert "<#C0PL>" in poland
    assert "<@U0PL2> at 09:03" in poland
    spain = status_line(text, "Spain")
    assert "<#C0ES>" in spain
    assert "pending for 12 min" in spain
    italy = status_line(text, "Italy")
    assert "not delivered" in italy
    assert "not_in_channel" in italy
    assert "pending" not in italy

    ops_bot.advance(minutes=60)
    later = reply_text(ops_bot.reply("/alert", "status", user_id=BOB))
    assert "pending for 1 h 12 min" in status_line(later, "Spain")


def test_status_names_countries_with_liaisons_but_no_channel(alerted: RunningBot) -> None:
    ok(alerted.reply("/liaison", f"assign {at(BOB, 'bob')} germany", user_id=ADMIN))
    text = reply_text(alerted.reply("/alert", "status", user_id=BOB))
    assert "Liaisons but no linked channel, so not notified: Germany" in text


# -- silence: reminders and escalation ---------------------------------------------------------------


def run_reminders(bot: RunningBot) -> int:
    sent = scheduler.run_reminders(bot.runtime)
    bot.deliver()
    return sent


def test_reminders_then_escalation(alerted: RunningBot, log: PostLog, slack: SlackStandIn) -> None:
    [pl_notice] = log.in_channel("C0PL")
    [tracker] = log.in_channel(OPS_CHANNEL)
    notices = {channel: log.in_channel(channel)[0] for channel in CHANNELS.values()}
    alerted.advance(minutes=3)
    press(alerted, 1, user_id=PL1, channel_id="C0PL", message_ts=pl_notice.ts, token="pl1")
    alerted.deliver()
    posted = len(log.posts)

    alerted.advance(minutes=11, seconds=59)  # 14:59 after the notice
    assert run_reminders(alerted) == 0
    assert len(log.posts) == posted

    alerted.advance(seconds=1)  # 15:00
    assert run_reminders(alerted) == 2
    assert len(log.in_channel("C0PL")) == 1  # Poland acknowledged: no reminder
    for channel, liaison, name in (("C0ES", ES1, "Spain"), ("C0IT", IT1, "Italy")):
        notice, reminder = log.in_channel(channel)
        assert reminder.params["thread_ts"] == notices[channel].ts == notice.ts
        text = readable(reminder.params)
        assert f"<@{liaison}>" in text
        assert f"{name} has not acknowledged alert notice #1" in text
        assert "15 min ago" in text
    assert len(log.in_channel(OPS_CHANNEL)) == 1  # no escalation yet

    posted = len(log.posts)
    assert run_reminders(alerted) == 0
    alerted.advance(minutes=14, seconds=59)
    assert run_reminders(alerted) == 0
    assert len(log.posts) == posted

    alerted.advance(seconds=1)  # 30:00
    assert run_reminders(alerted) == 1
    tracker_post, escalation = log.in_channel(OPS_CHANNEL)
    assert tracker_post == tracker
    text = readable(escalation.params)
    assert "Still silent 30 min after alert notice #1" in text
    assert "*Italy* — <@U0IT1>" in text
    assert "*Spain* — <@U0ES1>" in text
    assert "Poland" not in text
    assert escalation.params.get("thread_ts") == tracker.ts
    assert len(log.posts) == posted + 1

    alerted.advance(minutes=30)
    assert run_reminders(alerted) == 0
    assert len(log.posts) == posted + 1


def test_a_late_acknowledgement_stops_the_escalation(alerted: RunningBot, log: PostLog) -> None:
    alerted.advance(minutes=15)
    assert run_reminders(alerted) == 3
    [es_notice, _] = log.in_channel("C0ES")
    press(alerted, 1, user_id=ES1, channel_id="C0ES", message_ts=es_notice.ts, token="es")
    alerted.advance(minutes=15)
    assert run_reminders(alerted) == 1
    escalation = log.in_channel(OPS_CHANNEL)[-1]
    text = readable(escalation.params)
    assert "Italy" in text
    assert "Poland" in text
    assert "Spain" not in text


def test_an_acknowledgement_on_behalf_stops_the_reminders_too(alerted: RunningBot, log: PostLog) -> None:
    alerted.reply("/alert", "ack", user_id=OPS, channel_id="C0IT")
    alerted.advance(minutes=15)
    assert run_reminders(alerted) == 2
    assert len(log.in_channel("C0IT")) == 1  # the notice only, no reminder
    assert len(log.in_channel("C0PL")) == 2


def test_a_channel_linked_late_gets_its_own_reminder_period(alerted: RunningBot, log: PostLog) -> None:
    alerted.advance(minutes=20)
    assert run_reminders(alerted) == 3
    ok(alerted.reply("/liaison", f"assign {at('U0DE1', 'dieter')} germany", user_id=ADMIN))
    ok(alerted.reply("/liaison", "link germany", user_id=ADMIN, channel_id="C0DE"))
    alerted.deliver()
    [de_notice] = log.in_channel("C0DE")

    alerted.advance(minutes=10)  # 30 min after the notice, 10 after Germany got it
    assert run_reminders(alerted) == 1
    assert log.in_channel("C0DE") == [de_notice]
    escalation = readable(log.in_channel(OPS_CHANNEL)[-1].params)
    assert "Still silent 30 min after alert notice #1" in escalation
    for name in ("Italy", "Poland", "Spain"):
        assert f"*{name}*" in escalation
    assert "Germany" not in escalation

    alerted.advance(minutes=4, seconds=59)
    assert run_reminders(alerted) == 0
    alerted.advance(seconds=1)  # Germany's notice is 15 minutes old
    assert run_reminders(alerted) == 1
    _, reminder = log.in_channel("C0DE")
    assert reminder.params["thread_ts"] == de_notice.ts
    assert "<@U0DE1> — Germany has not acknowledged alert notice #1" in readable(reminder.params)
    assert "sent 15 min ago" in readable(reminder.params)

    alerted.advance(minutes=15)
    assert run_reminders(alerted) == 1
    escalation = readable(log.in_channel(OPS_CHANNEL)[-1].params)
    assert "*Germany* — <@U0DE1>" in escalation
    for name in ("Italy", "Poland", "Spain"):
        assert name not in escalation  # ops heard about them already


def test_a_country_that_never_received_the_notice_is_not_reminded(
    ops_bot: RunningBot, slack: SlackStandIn, log: PostLog
) -> None:
    set_up_directory(ops_bot)
    slack.set_channel_error("C0IT", "not_in_channel")
    raise_alert(ops_bot)
    ops_bot.deliver()
    warnings = [p for p in log.in_channel(OPS_CHANNEL) if "could not deliver" in readable(p.params)]
    assert len(warnings) == 1

    ops_bot.advance(minutes=15)
    assert run_reminders(ops_bot) == 2
    assert (
        len(slack.calls("chat.postMessage", channel="C0IT", include_failed=True)) == 1
    )  # only the failed notice
    for channel in ("C0PL", "C0ES"):
        assert len(log.in_channel(channel)) == 2
    ops_bot.advance(minutes=15)
    assert run_reminders(ops_bot) == 1
    ops_posts = [readable(p.params) for p in log.in_channel(OPS_CHANNEL)]
    assert len([text for text in ops_posts if "could not deliver" in text]) == 1
    escalation = ops_posts[-1]
    assert "Still silent" in escalation
    assert "*Poland*" in escalation
    assert "*Spain*" in escalation
    assert "Italy" not in escalation  # ops was told it never got there, and /alert status says so
    assert "not delivered" in status_line(reply_text(ops_bot.reply("/alert", "status")), "Italy")


def test_the_reminder_period_is_configurable(
    sqlite_url: str, slack: SlackStandIn, signing_secret: str, log: PostLog
) -> None:
    with running_bot(sqlite_url, slack, signing_secret, ops_channel=OPS_CHANNEL, ack_remind_minutes=5) as bot:
        set_up_directory(bot)
        raise_alert(bot)
        bot.deliver()
        bot.advance(minutes=4, seconds=59)
        assert run_reminders(bot) == 0
        bot.advance(seconds=1)
        assert run_reminders(bot) == 3
        for channel in CHANNELS.values():
            assert len(log.in_channel(channel)) == 2
        assert "5 min ago" in readable(log.in_channel("C0PL")[1].params)
        bot.advance(minutes=5)
        assert run_reminders(bot) == 1
        assert "Still silent 10 min after" in readable(log.in_channel(OPS_CHANNEL)[-1].params)


def test_pending_reminders_survive_a_restart(
    migrated_database_url: str, slack: SlackStandIn, signing_secret: str, log: PostLog
) -> None:
    with running_bot(migrated_database_url, slack, signing_secret, ops_channel=OPS_CHANNEL) as first:
        set_up_directory(first)
        raise_alert(first)
        first.deliver()
        first.advance(minutes=10)
        stopped_at = first.clock.now()
    notices = {channel: log.in_channel(channel)[0] for channel in CHANNELS.values()}

    with running_bot(migrated_database_url, slack, signing_secret, ops_channel=OPS_CHANNEL) as second:
        second.clock.set(stopped_at)
        assert run_reminders(second) == 0
        second.advance(minutes=5)
        assert run_reminders(second) == 3
        for channel, notice in notices.items():
            first_post, reminder = log.in_channel(channel)
            assert first_post == notice
            assert reminder.params["thread_ts"] == notice.ts
        second.advance(minutes=5)
        stopped_at = second.clock.now()  # 20 minutes after the notice

    with running_bot(migrated_database_url, slack, signing_secret, ops_channel=OPS_CHANNEL) as third:
        third.clock.set(stopped_at + timedelta(minutes=10))
        assert run_reminders(third) == 1  # reminders were not sent again; ops is told
        for channel in CHANNELS.values():
            assert len(log.in_channel(channel)) == 2
        assert "Still silent 30 min after alert notice #1" in readable(log.in_channel(OPS_CHANNEL)[-1].params)


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/New_York"])
def test_the_scheduler_checks_reminders_every_minute_in_the_configured_zone(
    sqlite_url: str, slack: SlackStandIn, signing_secret: str, zone: str
) -> None:
    with running_bot(sqlite_url, slack, signing_secret, timezone=zone) as bot:
        jobs = scheduler.build_scheduler(bot.runtime)
        job = jobs.get_job(scheduler.REMINDER_JOB)
        assert job is not None
        assert isinstance(job.trigger, CronTrigger)
        assert job.trigger.timezone == ZoneInfo(zone)
        fields = {field.name: str(field) for field in job.trigger.fields}
        assert fields["second"] == "0"
        assert fields["minute"] == "*"
        start = datetime(2026, 7, 20, 9, 0, 30, tzinfo=ZoneInfo(zone))
        assert job.trigger.get_next_fire_time(None, start) == start.replace(minute=1, second=0)
        assert not jobs.running


def test_reminders_skip_when_there_is_no_notice(ops_bot: RunningBot, log: PostLog) -> None:
    set_up_directory(ops_bot)
    ops_bot.advance(hours=2)
    assert run_reminders(ops_bot) == 0
    assert log.posts == []


# -- outage: nothing lost, nothing doubled, in order ---------------------------------------------------


@dataclass
class Timeline:
    """Each Slack call with the (frozen) time of the delivery round that made it."""

    entries: list[tuple[datetime, Call]]


def deliver_until_idle(bot: RunningBot, timeline: Timeline, *, step_seconds: float = 1.0) -> None:
    for _ in range(600):
        bot.deliver()
        seen = len(timeline.entries)
        calls = bot.slack.calls("chat.postMessage", include_failed=True)
        timeline.entries += [(bot.clock.now(), call) for call in calls[seen:]]
        if open_outbox(bot) == 0:
            return
        bot.advance(seconds=step_seconds)
    pytest.fail(f"the outbox never drained\n{bot.slack.dump()}")


def raise_three_notices(bot: RunningBot) -> None:
    raise_alert(bot, level="renforcee", reason="first notice")
    bot.advance(seconds=1)
    raise_alert(bot, level="urgence", reason="second notice")
    bot.advance(seconds=1)
    raise_alert(bot, level="vigilance", reason="third notice", verb="lower")


def script_outage(slack: SlackStandIn) -> None:
    slack.fail("chat.postMessage", status=503, times=2)
    slack.fail("chat.postMessage", status=429, retry_after=20, times=3)


def assert_each_notice_arrived_once_in_order(bot: RunningBot, slack: SlackStandIn, log: PostLog) -> None:
    notice_ids = sorted(notice.id for notice in bot.rows(AlertNotice))
    assert len(notice_ids) == 3
    for channel in (*CHANNELS.values(), OPS_CHANNEL):
        received = [notice_number(post.params) for post in log.in_channel(channel)]
        assert received == notice_ids, (channel, received)
        assert len(slack.messages(channel)) == 3
    for channel in CHANNELS.values():
        buttons = [ack_buttons(post.params)[0]["value"] for post in log.in_channel(channel)]
        assert buttons == [str(i) for i in notice_ids]
    assert {m.status for m in bot.rows(OutboxMessage)} == {OutboxStatus.SENT}
    assert all(m.slack_ts for m in bot.rows(OutboxMessage))


def assert_retries_waited(timeline: Timeline) -> None:
    failed = [(t, call) for t, call in timeline.entries if not call.ok]
    assert [call.status for _, call in failed] == [503, 503, 429, 429, 429]
    for when, call in failed:
        later = [t for t, c in timeline.entries if t > when and c.channel == call.channel]
        assert later, f"{call.channel} never retried"
        wait = min(later) - when
        if call.status == 429:
            assert wait >= timedelta(seconds=20), (call.channel, wait)  # Retry-After honoured
        else:
            assert wait >= timedelta(seconds=1), (call.channel, wait)  # backoff
        assert wait <= timedelta(seconds=25), (call.channel, wait)


def test_an_outage_delays_but_loses_and_doubles_nothing(
    any_ops_bot: RunningBot, slack: SlackStandIn, log: PostLog
) -> None:
    bot = any_ops_bot
    set_up_directory(bot)
    script_outage(slack)
    raise_three_notices(bot)
    timeline = Timeline([])
    deliver_until_idle(bot, timeline)
    assert_retries_waited(timeline)
    assert_each_notice_arrived_once_in_order(bot, slack, log)


def test_a_restart_in_the_middle_of_an_outage_loses_nothing(
    migrated_database_url: str, slack: SlackStandIn, signing_secret: str, log: PostLog
) -> None:
    timeline = Timeline([])
    with running_bot(migrated_database_url, slack, signing_secret, ops_channel=OPS_CHANNEL) as first:
        set_up_directory(first)
        script_outage(slack)
        raise_three_notices(first)
        for _ in range(12):  # 429s pause chat.postMessage for everyone: some get through, not all
            first.deliver()
            first.advance(seconds=2)
        timeline.entries += [
            (first.clock.now(), c) for c in slack.calls("chat.postMessage", include_failed=True)
        ]
        statuses = [m.status for m in first.rows(OutboxMessage)]
        assert OutboxStatus.SENT in statuses
        assert OutboxStatus.PENDING in statuses
        stopped_at = first.clock.now()

    with running_bot(migrated_database_url, slack, signing_secret, ops_channel=OPS_CHANNEL) as second:
        second.clock.set(stopped_at)
        deliver_until_idle(second, timeline)
        assert_each_notice_arrived_once_in_order(second, slack, log)
    assert len(slack.calls("chat.postMessage", include_failed=True)) == 12 + 5


def test_an_acknowledgement_during_an_outage_edits_the_notice_once_it_is_delivered(
    alerted: RunningBot, slack: SlackStandIn, log: PostLog
) -> None:
    [notice] = log.in_channel("C0PL")
    slack.fail("chat.update", status=500, times=2)
    press(alerted, 1, user_id=PL1, channel_id="C0PL", message_ts=notice.ts, token="pl1")
    timeline = Timeline([])
    deliver_until_idle(alerted, timeline)
    [edit] = updates(slack, "C0PL")
    assert edit.params["ts"] == notice.ts
    assert len(slack.calls("chat.update", include_failed=True)) == 2 + 2  # two failures, two edits


# -- escaping ------------------------------------------------------------------------------------------

# As typed in Slack: @channel, @here, a person picked with @, a literal `<b>`, `&`, and a disguised link.
DANGEROUS = "evacuate now <!channel> <!here> <@U999|eve> <b> & <https://evil.example|click>"
DANGEROUS_SHOWN = "evacuate now @channel @here <@U999> &lt;b&gt; &amp; click (https://evil.example)"


def test_the_reason_is_escaped_wherever_it_appears(
    alerted: RunningBot, slack: SlackStandIn, log: PostLog
) -> None:
    alerted.advance(minutes=1)
    raise_alert(alerted, level="vigilance", reason=DANGEROUS, verb="lower")
    alerted.deliver()
    [es_notice] = [p for p in log.in_channel("C0ES") if maybe_notice_number(p.params) == 2]
    press(alerted, 2, user_id=ES1, channel_id="C0ES", message_ts=es_notice.ts, token="es")
    alerted.deliver()
    alerted.advance(minutes=30)
    run_reminders(alerted)

    texts = [readable(post.params) for post in log.posts if maybe_notice_number(post.params) == 2]
    texts += [readable(call.params) for call in slack.calls("chat.update")]
    assert len(texts) == 4 + 2  # 3 notices, the tracker, 2 edits (Spain's notice and the tracker)
    texts += [
        reply_text(alerted.reply("/alert", "", user_id=BOB)),
        reply_text(alerted.reply("/alert", "status", user_id=BOB)),
    ]
    for text in texts:
        assert "<!channel>" not in text
        assert "<!here>" not in text
        assert "<b>" not in text
        assert "<https://evil" not in text
        assert "&amp;amp;" not in text  # escaped once, never twice
    for text in texts[:-1]:  # the status matrix does not repeat the reason
        assert DANGEROUS_SHOWN in text  # the mention of a person stays a mention
    for call in slack.calls(include_failed=True):
        dumped = json.dumps(call.params)
        assert "<!channel>" not in dumped
        assert "<!here>" not in dumped
    [notice] = [n for n in alerted.rows(AlertNotice) if n.id == 2]
    assert notice.reason == "evacuate now @channel @here <@U999> <b> & click (https://evil.example)"


def test_user_text_in_errors_is_escaped(ops_bot: RunningBot) -> None:
    set_up_directory(ops_bot)
    text = reply_text(ops_bot.reply("/alert", f"raise <!channel> {REASON}", user_id=OPS))
    assert "There is no alert level `@channel`" in text
    assert "<!channel>" not in text
    text = reply_text(ops_bot.reply("/alert", "<!here>", user_id=OPS))
    assert "`@here`" in text
    assert "<!here>" not in text
    # `<!here>` typed literally: Slack sends it entity-encoded; it is shown as typed, escaped once.
    text = reply_text(ops_bot.reply("/alert", "&lt;!here&gt;", user_id=OPS, encoded=True))
    assert "`&lt;!here&gt;`" in text
    assert "<!here>" not in text
    assert "&amp;lt;" not in text


def test_every_notice_message_carries_the_level_colour(alerted: RunningBot) -> None:
    """Liaison channels, the ops tracker and the edits all show the level's colour bar."""
    notices = [
        call
        for call in alerted.slack.calls("chat.postMessage")
        if call.channel in {*CHANNELS.values(), OPS_CHANNEL}
    ]
    assert len(notices) == len(CHANNELS) + 1
    for call in notices:
        [bar] = call.params["attachments"]
        assert bar["color"] == "#d72b3f"
        assert "Urgence attentat — level 3 of 3" in bar["text"]
