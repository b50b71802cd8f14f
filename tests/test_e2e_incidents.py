"""Issue 8 end to end: incidents over signed HTTP against the Slack stand-in.

The card is posted in the channel, edited in place (`chat.update`) after every change, and every
change is a reply in its thread; escalations reach the escalation channel (with the on-call user
group) and the countries' liaison channels; timers re-announce once per lapse.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import SQLModel

from bot import incidents as bot_incidents
from bot import scheduler
from commands.incident_card import ACTION_ESCALATE, ACTION_OWN, ACTION_RESOLVE
from commands.incident_modal import CALLBACK_ID, SHORTCUT_CALLBACK_ID
from storage.db import Database
from storage.incidents import claim_timer, due_timers, open_incidents
from storage.models import Incident, IncidentEvent, IncidentStatus, OutboxMessage
from tests.support.bot import START, RunningBot, reply_text, running_bot
from tests.support.slack_standin import TEAM_DOMAIN, SlackStandIn

ADMIN = "UADMIN"
OPS = "U0OPS"
PL1 = "U0PL1"
ES1 = "U0ES1"
BOB = "U0BOB"
ROOM = "C0FANZONE"  # where incidents are opened
ESCALATION = "C0ESCAL"
ONCALL = "S0ONCALL"
OPS_CHANNEL = "C0OPS"
LINKED = {"poland": "C0PL", "spain": "C0ES"}


def at(user_id: str, name: str = "someone") -> str:
    return f"<@{user_id}|{name}>"


@dataclass(frozen=True)
class Posted:
    channel: str
    ts: str
    params: dict[str, Any]

    @property
    def text(self) -> str:
        return readable(self.params)


class PostLog:
    """Answers chat.postMessage like Slack, remembering each message's ts."""

    def __init__(self, slack: SlackStandIn) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self.posts: list[Posted] = []
        slack.set_response("chat.postMessage", self._answer)

    def _answer(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel"))
        with self._lock:
            ts = f"1784530800.{next(self._counter):06d}"
            self.posts.append(Posted(channel, ts, params))
        return {"ok": True, "channel": channel, "ts": ts, "message": {"ts": ts, "text": params.get("text")}}

    def top_level(self, channel: str) -> list[Posted]:
        return [p for p in self.posts if p.channel == channel and "thread_ts" not in p.params]

    def thread(self, channel: str, ts: str) -> list[Posted]:
        return [p for p in self.posts if p.channel == channel and p.params.get("thread_ts") == ts]


def readable(params: dict[str, Any]) -> str:
    return str(params.get("text", "")) + "\n" + json.dumps(params.get("blocks", []), ensure_ascii=False)


def buttons(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        element["action_id"]: element
        for block in params.get("blocks", [])
        if block.get("type") == "actions"
        for element in block.get("elements", [])
    }


def ok(body: dict[str, Any]) -> str:
    text = reply_text(body)
    assert ":warning:" not in text, text
    assert ":x:" not in text, text
    return text


def refused(body: dict[str, Any]) -> str:
    text = reply_text(body)
    assert ":warning:" in text, text
    assert body.get("response_type") == "ephemeral"
    return text


def counts(bot: RunningBot) -> dict[str, int]:
    tables: list[type[SQLModel]] = [Incident, IncidentEvent, OutboxMessage]
    return {table.__name__: bot.count(table) for table in tables}


def the_incident(bot: RunningBot, incident_id: int = 1) -> Incident:
    with bot.runtime.db.session() as session:
        found = session.get(Incident, incident_id)
    assert found is not None
    return found


def timeline(bot: RunningBot, incident_id: int = 1) -> list[IncidentEvent]:
    return sorted((e for e in bot.rows(IncidentEvent) if e.incident_id == incident_id), key=lambda e: e.id)


def set_up_directory(bot: RunningBot) -> None:
    ok(bot.reply("/liaison", f"role {at(OPS, 'ops')} ops", user_id=ADMIN))
    ok(bot.reply("/liaison", f"assign {at(PL1)} poland", user_id=ADMIN))
    ok(bot.reply("/liaison", f"assign {at(ES1)} spain", user_id=ADMIN))
    for country, channel in LINKED.items():
        ok(bot.reply("/liaison", f"link {country}", user_id=ADMIN, channel_id=channel))
    bot.deliver()


def incident_bot(url: str, slack: SlackStandIn, secret: str, **overrides: Any) -> Any:
    settings: dict[str, Any] = {
        "ops_channel": OPS_CHANNEL,
        "escalation_channel": ESCALATION,
        "oncall_group": ONCALL,
    }
    settings.update(overrides)
    return running_bot(url, slack, secret, **settings)


@pytest.fixture
def log(slack: SlackStandIn) -> PostLog:
    return PostLog(slack)


@pytest.fixture
def ibot(sqlite_url: str, slack: SlackStandIn, signing_secret: str, log: PostLog) -> Iterator[RunningBot]:
    with incident_bot(sqlite_url, slack, signing_secret) as running:
        set_up_directory(running)
        yield running


@pytest.fixture
def any_ibot(
    database_url: str, slack: SlackStandIn, signing_secret: str, log: PostLog
) -> Iterator[RunningBot]:
    with incident_bot(database_url, slack, signing_secret) as running:
        set_up_directory(running)
        yield running


def open_incident(bot: RunningBot, text: str, *, user_id: str = PL1, channel_id: str = ROOM) -> str:
    body = bot.reply("/incident", f"open {text}", user_id=user_id, channel_id=channel_id)
    bot.deliver()
    return ok(body)


def the_card(log: PostLog, channel: str = ROOM, index: int = 0) -> Posted:
    return log.top_level(channel)[index]


def latest_card(slack: SlackStandIn, log: PostLog, channel: str = ROOM, index: int = 0) -> dict[str, Any]:
    """What the card shows now: the last edit of it, or the post itself."""
    card = the_card(log, channel, index)
    edits = [c.params for c in slack.calls("chat.update", channel) if c.params.get("ts") == card.ts]
    return edits[-1] if edits else card.params


def press(
    bot: RunningBot, card: dict[str, Any], action_id: str, *, user_id: str, ts: str, token: str = "press"
) -> int:
    value = buttons(card)[action_id]["value"]
    response = bot.client.post_action(
        action_id,
        value,
        user_id=user_id,
        channel_id=ROOM,
        message_ts=ts,
        response_url=bot.slack.response_url(token),
        block_id="incident_actions",
    )
    return response.status_code


def ephemeral_answers(slack: SlackStandIn, token: str) -> list[str]:
    return [readable(c.params) for c in slack.calls("response_url") if c.method == f"response_url:{token}"]


# -- the life cycle ----------------------------------------------------------------------------------


def test_the_whole_life_cycle(any_ibot: RunningBot, slack: SlackStandIn, log: PostLog) -> None:
    bot = any_ibot
    text = open_incident(bot, "sev3 Dog team missing at its post, Trocadéro --country poland --country spain")
    assert "INC-1" in text
    assert "<#C0FANZONE>" in text

    card = the_card(log)
    assert "INC-1 · sev3 · open" in card.text
    assert "Dog team missing at its post, Trocadéro" in card.text
    assert ":flag-pl: Poland, :flag-es: Spain" in card.text
    assert "<@U0PL1> at 09:00" in card.text
    assert set(buttons(card.params)) == {ACTION_OWN, ACTION_ESCALATE, ACTION_RESOLVE}
    assert log.top_level(ESCALATION) == []  # sev3: nobody is paged at opening

    # Poland's liaison takes ownership from the card: edited in place, and a reply in its thread.
    bot.advance(minutes=2)
    assert press(bot, card.params, ACTION_OWN, user_id=PL1, ts=card.ts) == 200
    bot.deliver()
    [edit] = slack.calls("chat.update", ROOM)
    assert (edit.params["channel"], edit.params["ts"]) == (ROOM, card.ts)
    assert "*Owner*\\n<@U0PL1>" in readable(edit.params)
    assert "INC-1 · sev3 · owned" in readable(edit.params)
    [reply] = log.thread(ROOM, card.ts)
    assert "<@U0PL1> took ownership of *INC-1*" in reply.text

    # Spain's liaison posts an update (an involved country); the card is edited again.
    bot.advance(minutes=3)
    ok(
        bot.reply(
            "/incident", "update INC-1 Handlers found, dogs still missing near Pont d'Iéna", user_id=ES1
        )
    )
    bot.deliver()
    assert (
        "<@U0ES1>: Handlers found, dogs still missing near Pont d'Iéna" in log.thread(ROOM, card.ts)[-1].text
    )
    assert len(slack.calls("chat.update", ROOM)) == 2

    # Ops escalate to sev1: escalation channel with the on-call group and a link back to the card,
    # both liaison channels told, the card and its thread updated.
    bot.advance(minutes=1)
    ok(
        bot.reply(
            "/incident",
            "escalate INC-1 sev1 crowd building up at the bridge",
            user_id=OPS,
            channel_id="C0OPS",
        )
    )
    bot.deliver()
    [page] = log.top_level(ESCALATION)
    assert page.text.startswith(f"<!subteam^{ONCALL}>")
    permalink = f"https://{TEAM_DOMAIN}.slack.com/archives/{ROOM}/p{card.ts.replace('.', '')}"
    assert f"<{permalink}|Open the card of INC-1>" in page.text
    assert "escalated *INC-1* from sev3 to sev1: crowd building up at the bridge" in page.text
    for channel in LINKED.values():
        [notice] = log.top_level(channel)
        assert "*INC-1*, which involves" in notice.text
        assert permalink in notice.text
        assert "<!subteam" not in notice.text
    assert "INC-1 · sev1 · owned" in readable(latest_card(slack, log))
    assert "from sev3 to sev1" in log.thread(ROOM, card.ts)[-1].text
    assert the_incident(bot).card_permalink == permalink

    # The owner resolves: no buttons left, the resolution is on the card.
    bot.advance(minutes=20)
    ok(bot.reply("/incident", "resolve INC-1 dogs back at their post", user_id=PL1))
    bot.deliver()
    resolved = latest_card(slack, log)
    assert "INC-1 · sev1 · resolved" in readable(resolved)
    assert "resolved *INC-1*: dogs back at their post" in readable(resolved)
    assert buttons(resolved) == {}

    # Reopen, then the list and the full timeline.
    ok(bot.reply("/incident", "reopen INC-1 one dog still missing", user_id=OPS))
    bot.deliver()
    assert "INC-1 · sev1 · owned" in readable(latest_card(slack, log))
    assert set(buttons(latest_card(slack, log))) == {ACTION_OWN, ACTION_ESCALATE, ACTION_RESOLVE}

    listed = ok(bot.reply("/incident", "list", user_id=BOB))
    assert "*INC-1* sev1" in listed
    assert "owner <@U0PL1>" in listed
    shown = ok(bot.reply("/incident", "show INC-1", user_id=BOB))
    order = ["opened", "took ownership", "Handlers found", "escalated", "resolved", "reopened"]
    positions = [shown.index(word) for word in order]
    assert positions == sorted(positions), shown
    assert [e.kind for e in timeline(bot)] == [
        "opened",
        "owned",
        "update",
        "escalated",
        "resolved",
        "reopened",
    ]
    # Every change: one edit of the card and one reply in its thread.
    assert len(log.thread(ROOM, card.ts)) == 5
    assert len(slack.calls("chat.update", ROOM)) == 5
    assert len(log.top_level(ROOM)) == 1


def test_opening_a_sev1_pages_the_on_call_group(ibot: RunningBot, log: PostLog) -> None:
    open_incident(ibot, "sev1 Suspicious package at the Eiffel Tower fan zone --country poland", user_id=BOB)
    [page] = log.top_level(ESCALATION)
    assert page.text.startswith(f"<!subteam^{ONCALL}>")
    assert "Suspicious package at the Eiffel Tower fan zone" in page.text
    assert "The card is in <#C0FANZONE>" in page.text  # not delivered yet when it was written
    [notice] = log.top_level("C0PL")
    assert "which involves *Poland*" in notice.text
    assert log.top_level("C0ES") == []


def test_sev3_escalation_to_sev3_is_refused_and_sev2_has_no_page_without_group(
    sqlite_url: str, slack: SlackStandIn, signing_secret: str, log: PostLog
) -> None:
    with incident_bot(sqlite_url, slack, signing_secret, oncall_group=None) as bot:
        set_up_directory(bot)
        open_incident(bot, "sev3 Contingent held at the border --country spain")
        ok(bot.reply("/incident", "escalate INC-1 customs asked for papers again", user_id=OPS))
        bot.deliver()
        [page] = log.top_level(ESCALATION)
        assert "from sev3 to sev2" in page.text
        assert "<!subteam" not in page.text


def test_escalation_falls_back_to_the_ops_channel(
    sqlite_url: str, slack: SlackStandIn, signing_secret: str, log: PostLog
) -> None:
    with incident_bot(sqlite_url, slack, signing_secret, escalation_channel=None) as bot:
        set_up_directory(bot)
        open_incident(bot, "sev2 Crowd surge at a river-bank viewing point")
        [page] = log.top_level(OPS_CHANNEL)
        assert "Crowd surge" in page.text


# -- permissions ---------------------------------------------------------------------------------------


def test_who_may_do_what(ibot: RunningBot, slack: SlackStandIn, log: PostLog) -> None:
    open_incident(ibot, "sev3 Missing radio set --country poland", user_id=BOB)
    before = counts(ibot)
    text = refused(ibot.reply("/incident", "escalate INC-1 sev2 because", user_id=BOB))
    assert "Only its owner, ops or an admin can escalate INC-1." in text
    text = refused(ibot.reply("/incident", "resolve INC-1 found it", user_id=ES1))
    assert "can resolve INC-1" in text
    text = refused(ibot.reply("/incident", "update INC-1 we have one spare", user_id=ES1))
    assert "the liaisons of Poland" in text
    refused(ibot.reply("/incident", f"assign INC-1 {at(ES1)}", user_id=PL1))
    assert counts(ibot) == before

    ok(ibot.reply("/incident", "update INC-1 checking the vans", user_id=PL1))  # Poland is involved
    ok(ibot.reply("/incident", f"assign INC-1 {at(ES1)}", user_id=OPS))
    ok(ibot.reply("/incident", "resolve INC-1 found in a van", user_id=ES1))  # now the owner


def test_a_refused_button_press_gets_an_ephemeral_explanation(
    ibot: RunningBot, slack: SlackStandIn, log: PostLog
) -> None:
    open_incident(ibot, "sev3 Missing radio set --country poland", user_id=PL1)
    card = the_card(log)
    before = counts(ibot)
    assert press(ibot, card.params, ACTION_RESOLVE, user_id=BOB, ts=card.ts, token="bob") == 200
    assert press(ibot, card.params, ACTION_OWN, user_id=ES1, ts=card.ts, token="es1") == 200
    ibot.deliver()
    [bob] = ephemeral_answers(slack, "bob")
    assert "Only its owner, ops or an admin can resolve INC-1." in bob
    [es1] = ephemeral_answers(slack, "es1")
    assert "can take ownership" in es1
    assert slack.calls("chat.update") == []
    assert counts(ibot) == {**before, "OutboxMessage": before["OutboxMessage"] + 2}  # the two answers
    assert the_incident(ibot).status == IncidentStatus.OPEN


def test_ops_may_take_over_an_owned_incident_but_a_liaison_may_not(
    ibot: RunningBot, slack: SlackStandIn, log: PostLog
) -> None:
    open_incident(ibot, "sev3 Radio silence from a patrol --country poland --country spain")
    card = the_card(log)
    assert press(ibot, card.params, ACTION_OWN, user_id=PL1, ts=card.ts) == 200
    ibot.deliver()
    owned = latest_card(slack, log)
    assert press(ibot, owned, ACTION_OWN, user_id=ES1, ts=card.ts, token="es1") == 200
    ibot.deliver()
    [answer] = ephemeral_answers(slack, "es1")
    assert "INC-1 is owned by <@U0PL1>; only ops or an admin can take it over." in answer
    assert the_incident(ibot).owner == PL1
    assert press(ibot, owned, ACTION_OWN, user_id=OPS, ts=card.ts) == 200
    ibot.deliver()
    assert the_incident(ibot).owner == OPS
    assert "<@U0OPS> took over *INC-1* from <@U0PL1>." in log.thread(ROOM, card.ts)[-1].text


# -- bad input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("show INC-x", "is not an incident id"),
        ("show 42", "Write incident ids as `INC-42`"),
        ("show INC-999", "There is no incident INC-999"),
        ("escalate INC-999 sev1 smoke", "There is no incident INC-999"),
        ("update", "Which incident?"),
        ("open sev5 Smoke in a stand", "There is no severity `sev5`"),
        ("open sevx Smoke in a stand", "There is no severity `sevx`"),
        ("severity INC-1 sev0 because", "There is no severity `sev0`"),
        ("open", "The incident needs a title"),
        ("open sev2", "The incident needs a title"),
        ("open sev2 --country poland", "The incident needs a title"),
        ("open " + "x" * 151, "The title is too long (151 characters; at most 150)"),
        ("open Smoke --country atlantis", "I don't know the country `atlantis`"),
        ("open Smoke --country", "Name a country after `--country`"),
        ("open Smoke --colour red", "Unknown option `--colour`"),
        ("escalate INC-1", "A reason for the escalation is required"),
        ("escalate INC-1 sev4 calmer now", "Escalation never lowers the severity"),
        ("escalate INC-1 sev3 same again", "INC-1 is already sev3"),
        ("assign INC-1 <!channel>", "`@channel` is not a Slack user"),
        ("assign INC-1 <!here>", "`@here` is not a Slack user"),
        ("assign INC-1 bob", "`bob` is not a Slack user"),
        ("reopen INC-1 it is back", "INC-1 is not resolved (it is open): nothing to reopen"),
        ("update INC-1 ok", "The update's text is required"),
        ("frobnicate INC-1", "`/incident` has no sub-command `frobnicate`"),
        ("list sev7", "There is no severity `sev7`"),
        ("list everything", "`/incident list` cannot show `everything`"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    ibot: RunningBot, log: PostLog, text: str, expected: str
) -> None:
    open_incident(ibot, "Smoke near stand B")
    before = counts(ibot)
    answer = refused(ibot.reply("/incident", text, user_id=OPS))
    assert expected in answer
    assert counts(ibot) == before


def test_resolved_incidents_refuse_changes(ibot: RunningBot, log: PostLog) -> None:
    open_incident(ibot, "Smoke near stand B")
    ok(ibot.reply("/incident", "resolve INC-1 a barbecue", user_id=OPS))
    ibot.deliver()
    before = counts(ibot)
    for text, expected in [
        ("resolve INC-1 again", "INC-1 is already resolved"),
        ("escalate INC-1 sev1 it flared up", "INC-1 is resolved, so it cannot be escalated"),
        ("update INC-1 all quiet now", "INC-1 is resolved, so it cannot be updated"),
        (f"assign INC-1 {at(PL1)}", "INC-1 is resolved, so it cannot be assigned"),
    ]:
        assert expected in refused(ibot.reply("/incident", text, user_id=OPS))
    assert counts(ibot) == before


def test_user_text_is_decoded_once_and_escaped_where_shown(ibot: RunningBot, log: PostLog) -> None:
    # What Slack sends when someone types: R&D van <north gate> @channel @anna (picked with @)
    text = "open R&amp;D van &lt;north gate&gt; <!channel> <@U0PL1|anna>"
    ok(ibot.reply("/incident", text, encoded=True, user_id=PL1, channel_id=ROOM))
    ibot.deliver()
    incident = the_incident(ibot)
    assert incident.title == "R&D van <north gate> @channel <@U0PL1>"
    card = the_card(log)
    assert "R&amp;D van &lt;north gate&gt; @channel <@U0PL1>" in card.text  # a real mention stays one
    assert "<!channel>" not in card.text
    assert "<@U0PL1|anna>" not in card.text
    ok(
        ibot.reply(
            "/incident",
            "update INC-1 &lt;!here&gt; see &lt;https://evil.example|link&gt;",
            user_id=OPS,
            encoded=True,
        )
    )
    ibot.deliver()
    reply = log.thread(ROOM, card.ts)[-1].text
    assert "&lt;!here&gt; see &lt;https://evil.example|link&gt;" in reply
    assert "<!here>" not in reply


# -- buttons: old cards and simultaneous presses ----------------------------------------------------------


def test_a_press_on_an_old_card_changes_nothing(ibot: RunningBot, slack: SlackStandIn, log: PostLog) -> None:
    open_incident(ibot, "sev3 Lost contingent bus --country spain")
    card = the_card(log)  # as first posted (version 1)
    ok(ibot.reply("/incident", "escalate INC-1 sev2 nobody can reach them", user_id=OPS))
    ibot.deliver()
    before = the_incident(ibot)
    assert press(ibot, card.params, ACTION_RESOLVE, user_id=OPS, ts=card.ts, token="old") == 200
    ibot.deliver()
    after = the_incident(ibot)
    assert (after.status, after.severity, after.version) == (before.status, before.severity, before.version)
    [answer] = ephemeral_answers(slack, "old")
    assert "INC-1 changed since that card was drawn" in answer
    assert "was not applied" in answer
    assert timeline(ibot)[-1].kind == "refused"
    assert "pressed *Resolve* on an out-of-date card" in log.thread(ROOM, card.ts)[-1].text


def test_a_malformed_button_value_is_refused(ibot: RunningBot, slack: SlackStandIn) -> None:
    response = ibot.client.post_action(
        ACTION_RESOLVE, "not-a-card", user_id=OPS, channel_id=ROOM, message_ts="1.2",
        response_url=ibot.slack.response_url("bad"),
    )  # fmt: skip
    assert response.status_code == 200
    ibot.deliver()
    [answer] = ephemeral_answers(slack, "bad")
    assert "not one of Liaison's incident cards" in answer
    assert ibot.count(Incident) == 0


ROUNDS = 4


def test_simultaneous_resolve_and_escalate_end_in_one_consistent_state(
    any_ibot: RunningBot, slack: SlackStandIn, log: PostLog
) -> None:
    """Several rounds, each: the owner presses Resolve while ops press Escalate on the same card."""
    bot = any_ibot
    for number in range(1, ROUNDS + 1):
        open_incident(bot, f"sev3 Unattended bag number {number} --country poland")
        ok(bot.reply("/incident", f"assign INC-{number} {at(PL1)}", user_id=OPS))
        bot.deliver()
        card = the_card(log, index=number - 1)
        current = latest_card(slack, log, index=number - 1)
        start = threading.Barrier(2)
        presses = [(ACTION_RESOLVE, PL1, f"owner-{number}"), (ACTION_ESCALATE, OPS, f"ops-{number}")]

        def go(p: tuple[str, str, str], card: Posted = card, current: dict[str, Any] = current,
               start: threading.Barrier = start) -> int:  # fmt: skip
            start.wait()
            return press(bot, current, p[0], user_id=p[1], ts=card.ts, token=p[2])

        with ThreadPoolExecutor(max_workers=2) as pool:
            assert list(pool.map(go, presses)) == [200, 200]
        bot.deliver()
        check_one_consistent_outcome(bot, slack, log, number, card)


def check_one_consistent_outcome(
    bot: RunningBot, slack: SlackStandIn, log: PostLog, number: int, card: Posted
) -> None:
    incident = the_incident(bot, number)
    winner, loser = timeline(bot, number)[-2:]
    assert sorted(e.actor for e in (winner, loser)) == sorted([PL1, OPS])
    assert loser.kind == "refused"
    if winner.kind == "resolved":
        assert (incident.status, incident.severity) == (IncidentStatus.RESOLVED, 3)
        assert "pressed *Escalate* on an out-of-date card" in loser.text
    else:
        assert winner.kind == "escalated"
        assert (incident.status, incident.severity) == (IncidentStatus.OWNED, 2)
        assert "pressed *Resolve* on an out-of-date card" in loser.text
    # The thread shows both attempts, in the order they were handled; the card shows the winner.
    replies = [p.params["text"] for p in log.thread(ROOM, card.ts)][-2:]
    assert replies == [winner.text, loser.text]
    shown = readable(latest_card(slack, log, index=number - 1))
    assert f"INC-{number} · sev{incident.severity} · {incident.status}" in shown
    loser_token = f"ops-{number}" if winner.kind == "resolved" else f"owner-{number}"
    [answer] = ephemeral_answers(slack, loser_token)
    assert "was not applied" in answer


# -- the modal -----------------------------------------------------------------------------------------


def test_incident_alone_opens_the_modal(ibot: RunningBot, slack: SlackStandIn, log: PostLog) -> None:
    response = ibot.command("/incident", "", user_id=BOB, channel_id=ROOM, trigger_id="111.222.abc")
    assert response.status_code == 200
    assert response.text == ""  # acknowledged; the modal is the answer
    [call] = slack.calls("views.open")
    assert call.params["trigger_id"] == "111.222.abc"
    view = call.params["view"]
    assert view["type"] == "modal"
    assert view["callback_id"] == CALLBACK_ID
    block_ids = [block.get("block_id") for block in view["blocks"]]
    assert [b for b in block_ids if b] == ["severity", "title", "description", "countries", "other_countries"]
    severity = view["blocks"][0]["element"]
    assert [o["value"] for o in severity["options"]] == ["1", "2", "3", "4"]
    assert severity["initial_option"]["value"] == "3"
    countries = view["blocks"][3]["element"]
    assert countries["type"] == "multi_static_select"
    assert {o["value"] for o in countries["options"]} == {"PL", "ES"}
    assert json.loads(view["private_metadata"]) == {"channel": ROOM}
    assert ibot.count(Incident) == 0


def submit(
    bot: RunningBot, view: dict[str, Any], values: dict[str, Any], user_id: str = BOB
) -> dict[str, Any]:
    response = bot.client.post_view_submission(view, values, user_id=user_id)
    assert response.status_code == 200, response.text
    return response.json() if response.content else {}


def form_values(
    *, severity: str | None = "2", title: str = "Flare thrown near the fan zone", description: str = "",
    countries: tuple[str, ...] = (), other: str = "",
) -> dict[str, Any]:  # fmt: skip
    return {
        "severity": {"value": {"type": "static_select", "selected_option": None if severity is None else {"value": severity}}},
        "title": {"value": {"type": "plain_text_input", "value": title}},
        "description": {"value": {"type": "plain_text_input", "value": description or None}},
        "countries": {"value": {"type": "multi_static_select", "selected_options": [{"value": c} for c in countries]}},
        "other_countries": {"value": {"type": "plain_text_input", "value": other or None}},
    }  # fmt: skip


def test_the_modal_validates_then_opens_the_incident(
    ibot: RunningBot, slack: SlackStandIn, log: PostLog
) -> None:
    ibot.command("/incident", "", user_id=BOB, channel_id=ROOM)
    view = slack.calls("views.open")[0].params["view"]

    answer = submit(ibot, view, form_values(title="   ", other="atlantis, spain"))
    assert answer["response_action"] == "errors"
    assert answer["errors"]["title"] == "The incident needs a title."
    assert "I don't know the country 'atlantis'" in answer["errors"]["other_countries"]
    answer = submit(ibot, view, form_values(severity=None, title="y" * 151))
    assert set(answer["errors"]) == {"severity", "title"}
    assert "151 characters" in answer["errors"]["title"]
    assert ibot.count(Incident) == 0
    assert slack.calls("chat.postMessage", ROOM) == []

    answer = submit(
        ibot,
        view,
        form_values(description="Two flares &amp; smoke &lt;east gate&gt;", countries=("PL",), other="spain"),
    )
    assert answer == {}  # the modal closes
    ibot.deliver()
    incident = the_incident(ibot)
    assert (incident.severity, incident.title, incident.countries) == (
        2,
        "Flare thrown near the fan zone",
        "PL,ES",
    )
    assert incident.description == "Two flares & smoke <east gate>"
    assert incident.opened_by == BOB
    card = the_card(log)
    assert "INC-1 · sev2 · open" in card.text
    assert "Two flares &amp; smoke &lt;east gate&gt;" in card.text
    assert log.top_level(ESCALATION)  # sev2: announced


def test_a_form_whose_metadata_is_gone_is_refused(ibot: RunningBot, slack: SlackStandIn) -> None:
    ibot.command("/incident", "", user_id=BOB, channel_id=ROOM)
    view = {**slack.calls("views.open")[0].params["view"], "private_metadata": "garbage"}
    answer = submit(ibot, view, form_values())
    assert answer["response_action"] == "errors"
    assert "out of date" in answer["errors"]["title"]
    assert ibot.count(Incident) == 0


def test_when_slack_refuses_the_modal_the_user_is_told(ibot: RunningBot, slack: SlackStandIn) -> None:
    slack.fail("views.open", status=200, error="expired_trigger_id")
    body = ibot.reply("/incident", "", user_id=BOB, channel_id=ROOM)
    assert "Slack did not open the form (expired_trigger_id)" in reply_text(body)
    assert "/incident open" in reply_text(body)


# -- the message shortcut -----------------------------------------------------------------------------


def test_the_message_shortcut_prefills_the_modal_and_links_the_message(
    ibot: RunningBot, slack: SlackStandIn, log: PostLog
) -> None:
    message = {
        "ts": "1784530700.000900",
        "user": ES1,
        "text": "Our bus is held at the border &amp; the driver says &lt;no papers&gt;\nPlease help, 40 officers aboard",
    }
    response = ibot.client.post_message_shortcut(
        SHORTCUT_CALLBACK_ID, message, user_id=ES1, channel_id="C0ES", trigger_id="333.444.def"
    )
    assert response.status_code == 200
    [call] = slack.calls("views.open")
    assert call.params["trigger_id"] == "333.444.def"
    view = call.params["view"]
    by_id = {block.get("block_id"): block for block in view["blocks"]}
    assert (
        by_id["title"]["element"]["initial_value"]
        == "Our bus is held at the border & the driver says <no papers>"
    )
    assert "40 officers aboard" in by_id["description"]["element"]["initial_value"]
    assert json.loads(view["private_metadata"]) == {
        "channel": "C0ES",
        "source_channel": "C0ES",
        "source_ts": "1784530700.000900",
    }
    assert "From a message by <@U0ES1> in <#C0ES>" in json.dumps(view["blocks"])

    values = form_values(
        severity="2",
        title=by_id["title"]["element"]["initial_value"],
        description=by_id["description"]["element"]["initial_value"],
        countries=("ES",),
    )
    assert submit(ibot, view, values, user_id=ES1) == {}
    ibot.deliver()
    [permalink_call] = slack.calls("chat.getPermalink")
    assert permalink_call.params == {
        **permalink_call.params,
        "channel": "C0ES",
        "message_ts": "1784530700.000900",
    }
    permalink = f"https://{TEAM_DOMAIN}.slack.com/archives/C0ES/p1784530700000900"
    incident = the_incident(ibot)
    assert (incident.source_channel, incident.source_ts, incident.source_permalink) == (
        "C0ES", "1784530700.000900", permalink,
    )  # fmt: skip
    card = the_card(log, "C0ES")
    assert f"<{permalink}|The message it was opened from>" in card.text


def test_the_shortcut_works_when_slack_gives_no_permalink(
    ibot: RunningBot, slack: SlackStandIn, log: PostLog
) -> None:
    slack.fail("chat.getPermalink", status=200, error="message_not_found")
    ibot.client.post_message_shortcut(
        SHORTCUT_CALLBACK_ID, {"ts": "1.000001", "text": "Smoke"}, channel_id="C0ES"
    )
    view = slack.calls("views.open")[0].params["view"]
    assert submit(ibot, view, form_values(title="Smoke")) == {}
    ibot.deliver()
    assert the_incident(ibot).source_permalink is None
    assert "Opened from a message in <#C0ES>" in the_card(log, "C0ES").text


# -- timers ----------------------------------------------------------------------------------------------


def run_timers(bot: RunningBot) -> int:
    fired = bot_incidents.run_incident_timers(bot.runtime)
    bot.deliver()
    return fired


def reannouncements(log: PostLog) -> list[Posted]:
    return [p for p in log.top_level(ESCALATION) if ":alarm_clock:" in p.text]


def test_timers_reannounce_once_per_lapse(ibot: RunningBot, log: PostLog) -> None:
    open_incident(ibot, "sev2 Dog team missing --country poland", user_id=BOB)
    card = the_card(log)
    ibot.advance(minutes=9, seconds=59)
    assert run_timers(ibot) == 0
    ibot.advance(seconds=1)
    assert run_timers(ibot) == 1
    assert run_timers(ibot) == 0  # the same lapse never twice
    [first] = reannouncements(log)
    assert "Still *no owner* 10 min after it was opened" in first.text
    assert first.text.startswith(f"<!subteam^{ONCALL}>")
    assert f"p{card.ts.replace('.', '')}" in first.text  # linked to the (delivered) card
    assert "no owner" in log.thread(ROOM, card.ts)[-1].text
    assert "Re-announced in <#C0ESCAL>" in log.thread(ROOM, card.ts)[-1].text

    ibot.advance(minutes=10)
    assert run_timers(ibot) == 1  # the next lapse
    ok(ibot.reply("/incident", f"assign INC-1 {at(PL1)}", user_id=OPS))
    ibot.advance(minutes=29)
    assert run_timers(ibot) == 0  # owned; updated 29 min ago
    ibot.advance(minutes=1)
    assert run_timers(ibot) == 1
    assert "*No update* for 30 min (owner: <@U0PL1>)" in reannouncements(log)[-1].text
    ok(ibot.reply("/incident", "update INC-1 searching the quays", user_id=PL1))
    ibot.advance(minutes=29)
    assert run_timers(ibot) == 0
    ok(ibot.reply("/incident", "resolve INC-1 found", user_id=PL1))
    ibot.advance(hours=3)
    assert run_timers(ibot) == 0
    assert len(reannouncements(log)) == 3
    assert len(log.top_level("C0PL")) == 1  # Poland heard of the opening; re-announcements go to escalation


def test_sev3_and_sev4_have_no_timers_until_escalated(ibot: RunningBot, log: PostLog) -> None:
    open_incident(ibot, "sev3 Broken barrier")
    ibot.advance(hours=2)
    assert run_timers(ibot) == 0
    ok(ibot.reply("/incident", "escalate INC-1 sev2 crowd leaning on it", user_id=OPS))
    ibot.advance(minutes=10)
    assert run_timers(ibot) == 1
    ok(ibot.reply("/incident", "severity INC-1 sev4 fixed provisionally", user_id=OPS))
    ibot.advance(hours=1)
    assert run_timers(ibot) == 0


def test_a_timer_survives_a_restart(
    sqlite_url: str, slack: SlackStandIn, signing_secret: str, log: PostLog
) -> None:
    with incident_bot(sqlite_url, slack, signing_secret) as first:
        open_incident(first, "sev1 Drone over the opening ceremony route", user_id=OPS)
        first.advance(minutes=6)
        assert run_timers(first) == 0
        stopped_at = first.clock.now()
    with incident_bot(sqlite_url, slack, signing_secret) as second:
        second.clock.set(stopped_at)
        second.advance(minutes=4)
        assert run_timers(second) == 1
        stopped_at = second.clock.now()
    with incident_bot(sqlite_url, slack, signing_secret) as third:
        third.clock.set(stopped_at)
        assert run_timers(third) == 0  # already announced before the restart
    assert len(reannouncements(log)) == 1


def test_two_processes_on_postgresql_announce_each_lapse_once(
    postgres_url: str, slack: SlackStandIn, signing_secret: str, log: PostLog
) -> None:
    with (
        incident_bot(postgres_url, slack, signing_secret) as one,
        incident_bot(postgres_url, slack, signing_secret) as two,
    ):
        open_incident(one, "sev1 Suspicious vehicle near the river procession", user_id=OPS)
        lapse = one.advance(minutes=10)
        two.clock.set(lapse)
        for _ in range(3):
            barrier = threading.Barrier(2)

            def run(bot: RunningBot, barrier: threading.Barrier = barrier) -> int:
                barrier.wait()
                return bot_incidents.run_incident_timers(bot.runtime)

            with ThreadPoolExecutor(max_workers=2) as pool:
                fired = list(pool.map(run, (one, two)))
            assert sum(fired) <= 1
        one.deliver()
        two.deliver()
        assert len(reannouncements(log)) == 1
        assert [e.kind for e in timeline(one)].count("timer-owner") == 1


def test_a_lapse_seen_by_two_processes_is_claimed_by_one(postgres_url: str) -> None:
    """The interleaving the threads above may or may not hit, forced: both see the lapse, one wins."""
    first, second = Database.from_url(postgres_url), Database.from_url(postgres_url)
    try:
        first.migrate()
        lapse = START + timedelta(minutes=10)
        with first.session() as session:
            session.add(
                Incident(
                    title="Drone", severity=1, status=IncidentStatus.OPEN, channel_id=ROOM, opened_by=OPS,
                    opened_at=START, updated_at=START, owner_due_at=lapse,
                )
            )  # fmt: skip
        with first.session() as one, second.session() as two:
            [(seen_by_one, timer)] = due_timers(one, lapse)
            [(seen_by_two, _)] = due_timers(two, lapse)
            assert seen_by_one.owner_due_at == seen_by_two.owner_due_at == lapse
            nxt = lapse + timedelta(minutes=10)
            assert claim_timer(one, 1, timer, seen=lapse, next_due=nxt) is True
            one.commit()
            assert claim_timer(two, 1, timer, seen=lapse, next_due=nxt) is False
    finally:
        first.dispose()
        second.dispose()


def test_the_scheduler_runs_the_incident_timers_every_minute(ibot: RunningBot) -> None:
    jobs = scheduler.build_scheduler(ibot.runtime)
    job = jobs.get_job(scheduler.INCIDENT_TIMERS_JOB)
    assert job is not None
    fields = {field.name: str(field) for field in job.trigger.fields}
    assert (fields["second"], fields["minute"]) == ("30", "*")
    assert not jobs.running


# -- reading --------------------------------------------------------------------------------------------


def test_list_orders_by_severity_then_age_and_filters(ibot: RunningBot, log: PostLog) -> None:
    open_incident(ibot, "sev3 Old moderate")
    ibot.advance(minutes=5)
    open_incident(ibot, "sev1 Critical one", user_id=OPS)
    ibot.advance(minutes=5)
    open_incident(ibot, "sev3 New moderate")
    ok(ibot.reply("/incident", f"assign INC-3 {at(PL1)}", user_id=OPS))
    ok(ibot.reply("/incident", "resolve INC-2 false alarm", user_id=OPS))
    listed = ok(ibot.reply("/incident", "list", user_id=BOB))
    assert listed.index("INC-1") < listed.index("INC-3")
    assert "INC-2" not in listed
    assert "INC-2" in ok(ibot.reply("/incident", "list all", user_id=BOB))
    mine = ok(ibot.reply("/incident", "list mine", user_id=PL1))
    assert "INC-3" in mine
    assert "INC-1" not in mine
    assert "none" in ok(ibot.reply("/incident", "list sev1", user_id=BOB))
    with ibot.runtime.db.session() as session:
        assert [i.id for i in open_incidents(session)] == [1, 3]


def test_help(ibot: RunningBot) -> None:
    text = ok(ibot.reply("/incident", "help"))
    for needle in ("/incident open", "escalate INC-42", "list", "show INC-42"):
        assert needle in text
