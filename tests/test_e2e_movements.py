"""End to end through the real HTTP server: signed Slack requests in, replies and stored rows out.

The clock is frozen at Monday 20 July 2026, 09:00 in Paris; tests move it with `bot.advance`.
Outgoing messages wait in the outbox until a test calls `bot.deliver()`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from commands import duplicates, movements
from storage import home_boards, totals
from storage.models import CommandLog, Movement, PendingCommand, Pledge
from tests.support.bot import RunningBot, reply_text, running_bot, transactions_beyond_the_replay_guard
from tests.support.fixtures import TEST_SIGNING_SECRET
from tests.support.signing import DEFAULT_CHANNEL_ID, DEFAULT_USER_ID, SlackRequestFactory
from tests.support.slack_standin import SlackStandIn

ANNA = DEFAULT_USER_ID  # a liaison officer
BORIS = "U0LIAISON2"  # another liaison officer
ADMIN = "UADMIN"  # an admin from LIAISON_ADMINS (pledges are theirs to record)


# -- helpers --------------------------------------------------------------------------------------


def say(bot: RunningBot, command: str, text: str, user: str = ANNA, **kwargs: Any) -> dict[str, Any]:
    return bot.reply(command, text, user_id=user, **kwargs)


def shown(body: dict[str, Any]) -> str:
    return reply_text(body)


def assert_in_channel(body: dict[str, Any], *expected: str) -> None:
    assert body["response_type"] == "in_channel", body
    for text in expected:
        assert text in shown(body), f"{text!r} not in {shown(body)}"


def assert_error(body: dict[str, Any], *expected: str) -> None:
    """An ephemeral error: only the caller sees it, with the warning sign and the explanation."""
    assert body["response_type"] == "ephemeral", body
    assert body["blocks"][0]["text"]["text"].startswith(":warning:"), body
    for text in expected:
        assert text in shown(body), f"{text!r} not in {shown(body)}"


def stored(bot: RunningBot) -> tuple[int, int, int, int]:
    return (bot.count(Movement), bot.count(Pledge), bot.count(CommandLog), bot.count(PendingCommand))


def pledge(bot: RunningBot, text: str) -> dict[str, Any]:
    body = say(bot, "/pledge", text, user=ADMIN)
    assert body["response_type"] == "in_channel", shown(body)
    return body


def buttons(body: dict[str, Any]) -> dict[str, str]:
    """Button label → value of an interactive reply."""
    return {
        element["text"]["text"]: element["value"]
        for block in body.get("blocks", [])
        if block["type"] == "actions"
        for element in block["elements"]
    }


def responses(bot: RunningBot, token: str) -> list[dict[str, Any]]:
    """What the bot posted to the response URL `token`, in order."""
    return [call.params for call in bot.slack.calls(f"response_url:{token}")]


# -- /arrivals ------------------------------------------------------------------------------------


def test_arrival_is_recorded_with_its_audit_trail(any_bot: RunningBot) -> None:
    body = say(any_bot, "/arrivals", "poland 40")

    assert_in_channel(body, "Poland: 40 arrived", "Poland now: *40 on duty* (no pledge recorded)")
    assert f"<@{ANNA}>" in shown(body)
    [movement] = any_bot.rows(Movement)
    assert (movement.country, movement.kind, movement.count) == ("PL", "arrival", 40)
    assert (movement.recorded_by, movement.channel_id) == (ANNA, DEFAULT_CHANNEL_ID)
    assert movement.command_text == "/arrivals poland 40"
    assert movement.created_at == any_bot.clock.now()
    assert (movement.capability, movement.location, movement.note, movement.reverses_id) == (None,) * 4
    assert f"entry #{movement.id}" in shown(body)


@pytest.mark.parametrize("typed", ["PL", "POL", "Poland", "poland", "pOlAnD"])
def test_every_form_of_the_country_lands_on_the_same_totals(bot: RunningBot, typed: str) -> None:
    say(bot, "/arrivals", "poland 10", user=BORIS)
    body = say(bot, "/arrivals", f"{typed} 5")
    assert_in_channel(body, "Poland: 5 arrived", "*15 on duty*")


def test_arrival_totals_against_the_pledge(bot: RunningBot) -> None:
    pledge(bot, "poland 120")
    body = say(bot, "/arrivals", "poland 40")
    assert_in_channel(body, "*40 on duty* of 120 pledged (33%) ▓▓▓░░░░░░░")


def test_arrival_with_capability_place_and_note(bot: RunningBot) -> None:
    body = say(bot, "/arrivals", "PL 12 dog team at CDG -- 2 handlers, 4 dogs")

    assert_in_channel(body, "Poland: 12 arrived (dog-team) at CDG", ">2 handlers, 4 dogs")
    [movement] = bot.rows(Movement)
    assert (movement.capability, movement.location, movement.note) == (
        "dog-team",
        "CDG",
        "2 handlers, 4 dogs",
    )
    assert movement.command_text == "/arrivals PL 12 dog team at CDG -- 2 handlers, 4 dogs"


def test_note_after_an_em_dash(bot: RunningBot) -> None:
    say(bot, "/arrivals", "uk 8 eod — bomb squad from Hendon")
    [movement] = bot.rows(Movement)
    assert (movement.country, movement.capability, movement.note) == ("GB", "eod", "bomb squad from Hendon")


def test_user_text_cannot_ping_or_link_but_mentions_stay_mentions(bot: RunningBot) -> None:
    typed = "poland 3 at <!here> -- ping <!channel> <@U999|eve> & co <!everyone> <north gate>"
    body = say(bot, "/arrivals", typed)

    everything = shown(body)
    for raw in ("<!channel>", "<!here>", "<!everyone>", " & co", "<north", "&amp;amp;", "&amp;lt;"):
        assert raw not in everything
    for expected in ("at @here", "ping @channel <@U999> &amp; co @everyone &lt;north gate&gt;"):
        assert expected in everything
    [movement] = bot.rows(Movement)
    assert movement.location == "@here"
    assert movement.note == "ping @channel <@U999> & co @everyone <north gate>"
    for listing in (say(bot, "/arrivals", ""), say(bot, "/arrivals", "undo")):
        assert "<!here>" not in shown(listing)
        assert "at @here" in shown(listing)


# -- /departures ----------------------------------------------------------------------------------


def test_departure_lowers_the_totals(bot: RunningBot) -> None:
    say(bot, "/arrivals", "poland 40")
    body = say(bot, "/departures", "poland 5")

    assert_in_channel(body, "Poland: 5 left", "*35 on duty*")
    departure = bot.rows(Movement)[-1]
    assert (departure.kind, departure.count, departure.command_text) == (
        "departure",
        5,
        "/departures poland 5",
    )


def test_departure_below_zero_is_refused_and_nothing_stored(any_bot: RunningBot) -> None:
    say(any_bot, "/arrivals", "poland 10")
    before = stored(any_bot)

    body = say(any_bot, "/departures", "poland 11")

    assert_error(body, "Poland has only 10 people on duty; 11 can't leave.")
    assert stored(any_bot) == before
    assert_in_channel(say(any_bot, "/departures", "poland 10"), "*0 on duty*")
    assert_error(say(any_bot, "/departures", "poland 1"), "Poland has only 0 people on duty")


def test_departure_from_a_country_never_arrived_is_refused(bot: RunningBot) -> None:
    assert_error(say(bot, "/departures", "germany 1"), "Germany has only 0 people on duty")
    assert stored(bot) == (0, 0, 0, 0)


def test_departure_must_name_the_capability_that_leaves(bot: RunningBot) -> None:
    say(bot, "/arrivals", "poland 10 eod")
    body = say(bot, "/departures", "poland 4")
    assert_error(body, "recorded without a capability", "Say which capability is leaving: `eod` (10)")
    assert_in_channel(say(bot, "/departures", "poland 4 eod"), "Poland: 4 left (eod)", "*6 on duty*")


# -- /pledge --------------------------------------------------------------------------------------


def test_pledge_new_replace_withdraw_and_list(any_bot: RunningBot) -> None:
    created = pledge(any_bot, "poland 120")
    assert_in_channel(created, "Pledge for Poland (unspecified capability): 120 (new)")
    replaced = pledge(any_bot, "poland 140")
    assert_in_channel(replaced, "(was 120)", "pledged in total: 140")
    pledge(any_bot, "poland 20 dog-team")
    withdrawn = pledge(any_bot, "poland 0 dog-team")
    assert_in_channel(withdrawn, "withdrawn", "(was 20)", "pledged in total: 140")

    rows = any_bot.rows(Pledge)
    assert [(p.capability, p.headcount) for p in rows] == [
        (None, 120),
        (None, 140),
        ("dog-team", 20),
        ("dog-team", 0),
    ]
    assert all(p.recorded_by == ADMIN and p.command_text.startswith("/pledge poland ") for p in rows)

    listing = say(any_bot, "/pledge", "poland", user=ANNA)
    assert listing["response_type"] == "ephemeral"
    assert "*unspecified*: 140" in shown(listing)
    assert "dog-team" not in shown(listing)  # withdrawn
    assert listing["text"] == "Poland pledged 140 in total."


def test_pledge_listing_of_a_country_without_pledges(bot: RunningBot) -> None:
    body = say(bot, "/pledge", "germany")
    assert body["text"] == "No pledge recorded for Germany yet."


def test_pledge_by_a_liaison_officer_is_refused(bot: RunningBot) -> None:
    body = say(bot, "/pledge", "poland 120", user=ANNA)
    assert_error(body, "admin")
    assert stored(bot) == (0, 0, 0, 0)


# -- today's movements ----------------------------------------------------------------------------


def test_arrivals_alone_lists_today(bot: RunningBot) -> None:
    say(bot, "/arrivals", "poland 40 at CDG")
    bot.advance(minutes=5)
    say(bot, "/departures", "poland 2", user=BORIS)

    body = say(bot, "/arrivals", "")

    assert body["response_type"] == "ephemeral"
    assert body["text"] == "2 movements today (Monday 20 July)."
    listed = shown(body)
    assert "`09:00` +40 :flag-pl: Poland · at CDG" in listed
    assert "`09:05` −2 :flag-pl: Poland" in listed
    assert listed.index("09:05") < listed.index("09:00")  # latest first


def test_today_is_the_day_in_paris_not_in_utc(bot: RunningBot) -> None:
    say(bot, "/arrivals", "poland 40")  # Monday 09:00 in Paris
    bot.advance(hours=14, minutes=30)
    say(bot, "/arrivals", "germany 5")  # Monday 23:30 in Paris (21:30 UTC)
    bot.advance(hours=1)
    say(bot, "/arrivals", "italy 7")  # Tuesday 00:30 in Paris, still Monday in UTC

    body = say(bot, "/departures", "")

    assert body["text"] == "1 movement today (Tuesday 21 July)."
    assert "Italy" in shown(body)
    assert "Poland" not in shown(body)
    assert "Germany" not in shown(body)


def test_nothing_today(bot: RunningBot) -> None:
    body = say(bot, "/arrivals", "")
    assert body["response_type"] == "ephemeral"
    assert body["text"] == "No movements recorded today (Monday 20 July, Europe/Paris)."


# -- undo -----------------------------------------------------------------------------------------


def test_undo_adds_a_compensating_record(any_bot: RunningBot) -> None:
    say(any_bot, "/arrivals", "poland 40")
    any_bot.advance(minutes=10)

    body = say(any_bot, "/arrivals", "undo")

    assert_in_channel(body, "undid entry #", "Poland: 40 arrived", "Poland now: *0 on duty*")
    original, reversal = any_bot.rows(Movement)
    assert (reversal.kind, reversal.count, reversal.reverses_id) == ("arrival", -40, original.id)
    assert (reversal.recorded_by, reversal.command_text) == (ANNA, "/arrivals undo")
    assert original.count == 40  # never edited
    deployment = say(any_bot, "/deployment", "poland")
    assert "*On duty*\\n0" in shown(deployment)
    assert "*Arrived*\\n0" in shown(deployment)

    second = say(any_bot, "/arrivals", "undo")
    assert_error(second, "was already undone")
    assert any_bot.count(Movement) == 2


def test_undo_of_a_departure(bot: RunningBot) -> None:
    say(bot, "/arrivals", "poland 40")
    say(bot, "/departures", "poland 15")
    body = say(bot, "/departures", "undo")
    assert_in_channel(body, "Poland: 15 left", "*40 on duty*")
    assert bot.rows(Movement)[-1].count == -15


def test_undo_window_is_15_minutes(bot: RunningBot) -> None:
    say(bot, "/arrivals", "poland 40")
    bot.advance(minutes=15, seconds=1)

    body = say(bot, "/arrivals", "undo")

    assert_error(body, "older than 15 minutes and can't be undone")
    assert bot.count(Movement) == 1


def test_undo_just_inside_the_window(bot: RunningBot) -> None:
    say(bot, "/arrivals", "poland 40")
    bot.advance(minutes=14, seconds=59)
    assert_in_channel(say(bot, "/arrivals", "undo"), "undid entry")


def test_undo_only_reverses_the_callers_own_entry(bot: RunningBot) -> None:
    say(bot, "/arrivals", "poland 40", user=ANNA)
    say(bot, "/arrivals", "germany 10", user=BORIS)

    body = say(bot, "/arrivals", "undo", user=ANNA)

    assert_in_channel(body, "Poland: 40 arrived")
    reversal = bot.rows(Movement)[-1]
    assert (reversal.country, reversal.count) == ("PL", -40)
    assert say(bot, "/deployment", "germany")["text"].startswith("Germany: 10 on duty")
    assert_error(say(bot, "/arrivals", "undo", user="U0NOBODY"), "You have no arrival entry to undo.")


def test_undo_of_an_arrival_whose_people_already_left_is_refused(bot: RunningBot) -> None:
    say(bot, "/arrivals", "poland 40")
    say(bot, "/departures", "poland 30", user=BORIS)
    assert_error(say(bot, "/arrivals", "undo"), "would leave Poland below zero")
    assert bot.count(Movement) == 2


# -- /deployment ----------------------------------------------------------------------------------


def record_a_week(bot: RunningBot) -> None:
    pledge(bot, "poland 120")
    pledge(bot, "poland 20 dog-team")
    pledge(bot, "germany 200")
    say(bot, "/arrivals", "poland 40")
    say(bot, "/arrivals", "poland 12 dog-team")
    say(bot, "/arrivals", "germany 150")
    say(bot, "/arrivals", "italy 10")
    say(bot, "/departures", "poland 5")


def test_deployment_of_one_country(bot: RunningBot) -> None:
    record_a_week(bot)

    body = say(bot, "/deployment", "poland")

    assert body["response_type"] == "ephemeral"
    assert body["text"] == "Poland: 47 on duty of 140 pledged (34%); arrived 52, departed 5."
    fields = [f["text"] for f in body["blocks"][1]["fields"]]
    assert fields == ["*Pledged*\n140", "*On duty*\n47", "*Arrived*\n52", "*Departed*\n5"]
    assert "▓▓▓░░░░░░░ 34%" in shown(body)
    assert "gap *93*" in shown(body)
    table = body["blocks"][3]["text"]["text"]
    assert re.search(r"dog-team\s+20\s+12\s+0\s+12", table)
    assert re.search(r"unspecified\s+120\s+40\s+5\s+35", table)


def test_deployment_of_everyone_biggest_gaps_first(any_bot: RunningBot) -> None:
    record_a_week(any_bot)

    body = say(any_bot, "/deployment", "")

    assert body["text"] == "All countries: 207 on duty of 340 pledged (61%), 3 countries."
    assert "*207 on duty* of 340 pledged" in shown(body)
    table = next(
        b["text"]["text"]
        for b in body["blocks"]
        if b.get("text", {}).get("text", "").startswith("```Country")
    )
    assert [line.split()[0] for line in table.strip("`").splitlines()[1:]] == ["Poland", "Germany", "Italy"]


def test_deployment_with_nothing_recorded(bot: RunningBot) -> None:
    assert (
        say(bot, "/deployment", "")["text"]
        == "Nothing recorded yet: no pledge and no movement for any country."
    )
    assert (
        say(bot, "/deployment", "poland")["text"]
        == "Nothing recorded for Poland yet: no pledge, no movement."
    )


# -- help and bad input ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBot]:
    """One bot for the tests that must store nothing (help, bad input): Poland has 10 on duty."""
    database = tmp_path_factory.mktemp("shared") / "liaison.db"
    with SlackStandIn() as slack, running_bot(f"sqlite:///{database}", slack, TEST_SIGNING_SECRET) as running:
        say(running, "/arrivals", "poland 10", user=BORIS)
        yield running


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/arrivals", "`/arrivals undo`"),
        ("/departures", "`/departures undo`"),
        ("/pledge", "`0` withdraws it"),
        ("/deployment", "biggest gaps first"),
    ],
)
def test_help_on_every_command(shared_bot: RunningBot, command: str, expected: str) -> None:
    before = stored(shared_bot)
    body = say(shared_bot, command, "help")
    assert body["response_type"] == "ephemeral"
    assert f"*{command}*" in body["text"]
    assert expected in body["text"]
    assert stored(shared_bot) == before


BAD_INPUT = [
    ("/arrivals", "polnad 40", "I don't know the country `polnad`.", "Did you mean *Poland*"),
    ("/arrivals", "poland", "How many?", "Usage: `/arrivals"),
    ("/arrivals", "poland forty", "How many? Add a number after Poland.", ""),
    ("/arrivals", "poland 0", "at least 1", "undo"),
    ("/arrivals", "poland -5", "can't be negative", ""),
    ("/arrivals", "poland 4.5", "whole number", "No decimals"),
    ("/arrivals", "poland 4,5", "whole number", ""),
    ("/arrivals", "poland 40k", "whole number", ""),
    ("/arrivals", "poland 5001", "at most 5,000", ""),
    ("/arrivals", "poland 40 please hurry", "I don't understand `please`.", "Usage:"),
    ("/arrivals", "undo extra", "takes nothing after it", ""),
    ("/arrivals", "poland 40\x07", "control characters", ""),
    ("/arrivals", "poland 40 -- " + "x" * 3000, "too long", "`/arrivals help`"),
    ("/departures", "poland 11", "Poland has only 10 people on duty", ""),
    ("/departures", "poland 4.5", "whole number", ""),
    ("/departures", "polnad 1", "Did you mean *Poland*", ""),
    ("/pledge", "poland -1", "can't be negative", "withdraw"),
    ("/pledge", "poland 12 sniffers", "I don't know the capability `sniffers`.", ""),
    ("/pledge", "polnad 10", "Did you mean *Poland*", ""),
    ("/deployment", "polnad", "Did you mean *Poland*", ""),
    ("/deployment", "poland 40", "takes a country, or nothing", ""),
]


@pytest.mark.parametrize(
    ("command", "text", "message", "hint"),
    BAD_INPUT,
    ids=[f"{command} {text[:24]!r}" for command, text, _, _ in BAD_INPUT],
)
def test_bad_input_gets_an_ephemeral_error_and_stores_nothing(
    shared_bot: RunningBot, command: str, text: str, message: str, hint: str
) -> None:
    before = stored(shared_bot)

    body = say(shared_bot, command, text, user=ADMIN)

    assert_error(body, message, hint)
    assert stored(shared_bot) == before
    assert stored(shared_bot)[0] == 1  # the one arrival made by the fixture


# -- a command retyped after a Slack timeout ------------------------------------------------------


def test_retyped_command_asks_before_recording_again(any_bot: RunningBot) -> None:
    say(any_bot, "/arrivals", "poland 40")
    any_bot.advance(seconds=30)

    prompt = say(any_bot, "/arrivals", "Poland  40")  # same command, typed again

    assert prompt["response_type"] == "ephemeral"
    assert "records the same as your entry at 09:00" in shown(prompt)
    assert list(buttons(prompt)) == ["Record again", "Discard"]
    assert any_bot.count(Movement) == 1

    response = any_bot.client.post_action(
        duplicates.ACTION_RECORD_AGAIN,
        buttons(prompt)["Record again"],
        user_id=ANNA,
        response_url=any_bot.slack.response_url("dup"),
    )
    assert response.status_code == 200
    assert any_bot.count(Movement) == 2
    assert responses(any_bot, "dup") == []  # nothing is sent before the outbox delivers
    any_bot.deliver()

    deleted, announced = responses(any_bot, "dup")
    assert deleted == {"delete_original": True}
    assert announced["response_type"] == "in_channel"
    assert "Poland: 40 arrived" in shown(announced)
    assert "*80 on duty*" in shown(announced)
    assert any_bot.rows(Movement)[-1].command_text == "/arrivals Poland 40"


def test_discard_stores_nothing(bot: RunningBot) -> None:
    say(bot, "/arrivals", "poland 40")
    prompt = say(bot, "/arrivals", "poland 40")

    bot.client.post_action(
        duplicates.ACTION_DISCARD,
        buttons(prompt)["Discard"],
        user_id=ANNA,
        response_url=bot.slack.response_url("dup"),
    )
    bot.deliver()

    [answer] = responses(bot, "dup")
    assert answer["replace_original"] is True
    assert "Discarded" in answer["text"]
    assert bot.count(Movement) == 1

    # The choice is made: pressing again changes nothing.
    bot.client.post_action(
        duplicates.ACTION_RECORD_AGAIN,
        buttons(prompt)["Record again"],
        user_id=ANNA,
        response_url=bot.slack.response_url("dup2"),
    )
    bot.deliver()
    assert "Already discarded" in responses(bot, "dup2")[0]["text"]
    assert bot.count(Movement) == 1


def test_only_the_caller_can_choose(bot: RunningBot) -> None:
    say(bot, "/arrivals", "poland 40")
    prompt = say(bot, "/arrivals", "poland 40")

    bot.client.post_action(
        duplicates.ACTION_RECORD_AGAIN,
        buttons(prompt)["Record again"],
        user_id=BORIS,
        response_url=bot.slack.response_url("boris"),
    )
    bot.deliver()

    [refusal] = responses(bot, "boris")
    assert refusal["response_type"] == "ephemeral"
    assert "Only the person who typed the command can choose." in refusal["text"]
    assert bot.count(Movement) == 1
    # The caller still can.
    bot.client.post_action(
        duplicates.ACTION_RECORD_AGAIN,
        buttons(prompt)["Record again"],
        user_id=ANNA,
        response_url=bot.slack.response_url("anna"),
    )
    assert bot.count(Movement) == 2


@pytest.mark.parametrize(
    "between",
    [[], [("/departures", "poland 3")], [("/arrivals", "spain 5"), ("/pledge", "poland 100")]],
)
@pytest.mark.parametrize("again", ["PL 40", "POL 40", "poland 40 -- second try", "Poland +40"])
def test_the_same_entry_retyped_differently_asks_too(
    bot: RunningBot, between: list[tuple[str, str]], again: str
) -> None:
    say(bot, "/arrivals", "poland 40")
    for command, text in between:
        user = ADMIN if command == "/pledge" else ANNA
        assert say(bot, command, text, user=user)["response_type"] == "in_channel"
    bot.advance(seconds=90)
    before = bot.count(Movement)

    prompt = say(bot, "/arrivals", again)

    assert list(buttons(prompt)) == ["Record again", "Discard"], shown(prompt)
    assert "records the same as your entry at 09:00" in shown(prompt)
    assert bot.count(Movement) == before


@pytest.mark.parametrize(
    "different",
    ["poland 41", "spain 40", "poland 40 eod", "poland 40 at CDG", "poland 40 dog-team at ORY"],
)
def test_another_entry_is_not_a_duplicate(bot: RunningBot, different: str) -> None:
    say(bot, "/arrivals", "poland 40 dog-team at CDG")
    assert_in_channel(say(bot, "/arrivals", different))
    assert say(bot, "/departures", "poland 1 dog-team at CDG")["response_type"] == "in_channel"
    assert bot.count(Movement) == 3


def test_a_prompt_expires_with_the_window(bot: RunningBot) -> None:
    say(bot, "/arrivals", "poland 40")
    prompt = say(bot, "/arrivals", "PL 40")
    bot.advance(days=2)

    bot.client.post_action(
        duplicates.ACTION_RECORD_AGAIN,
        buttons(prompt)["Record again"],
        user_id=ANNA,
        response_url=bot.slack.response_url("late"),
    )
    bot.deliver()

    [answer] = responses(bot, "late")
    assert "This choice expired (2 min after the prompt)" in answer["text"]
    assert "was not recorded again" in answer["text"]
    assert answer["replace_original"] is True
    assert bot.count(Movement) == 1
    [pending] = bot.rows(PendingCommand)
    assert pending.resolution == "expired"


def test_a_refused_record_again_leaves_the_prompt_open(bot: RunningBot) -> None:
    say(bot, "/arrivals", "poland 40")
    say(bot, "/departures", "poland 30")
    prompt = say(bot, "/departures", "PL 30")
    assert list(buttons(prompt)) == ["Record again", "Discard"]

    bot.client.post_action(
        duplicates.ACTION_RECORD_AGAIN,
        buttons(prompt)["Record again"],
        user_id=ANNA,
        response_url=bot.slack.response_url("again"),
    )
    bot.deliver()

    [refusal] = responses(bot, "again")
    assert "Poland has only 10 people on duty; 30 can't leave." in refusal["text"]
    assert refusal["replace_original"] is False  # the prompt stays, its buttons still work
    assert bot.count(Movement) == 2
    [pending] = bot.rows(PendingCommand)
    assert (pending.resolved_at, pending.resolution) == (None, None)

    bot.client.post_action(
        duplicates.ACTION_DISCARD,
        buttons(prompt)["Discard"],
        user_id=ANNA,
        response_url=bot.slack.response_url("discard"),
    )
    bot.deliver()
    assert "Discarded" in responses(bot, "discard")[0]["text"]


def test_a_choice_is_one_transaction(bot: RunningBot) -> None:
    say(bot, "/arrivals", "poland 40")
    prompt = say(bot, "/arrivals", "poland 40")
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(bot.runtime.db.engine, "before_cursor_execute", count)
    try:
        bot.client.post_action(
            duplicates.ACTION_RECORD_AGAIN,
            buttons(prompt)["Record again"],
            user_id=ANNA,
            response_url=bot.slack.response_url("dup"),
        )
    finally:
        event.remove(bot.runtime.db.engine, "before_cursor_execute", count)
    assert len(transactions_beyond_the_replay_guard(statements)) == 1, statements
    assert bot.count(Movement) == 2


def test_pledge_retyped_asks_too(bot: RunningBot) -> None:
    pledge(bot, "poland 120")
    prompt = say(bot, "/pledge", "poland 120", user=ADMIN)
    assert list(buttons(prompt)) == ["Record again", "Discard"]
    assert bot.count(Pledge) == 1


def test_same_command_after_two_minutes_records_normally(bot: RunningBot) -> None:
    say(bot, "/arrivals", "poland 40")
    bot.advance(minutes=2, seconds=1)
    assert_in_channel(say(bot, "/arrivals", "poland 40"), "*80 on duty*")
    assert bot.count(Movement) == 2


def test_different_text_or_another_user_is_not_a_duplicate(bot: RunningBot) -> None:
    say(bot, "/arrivals", "poland 40")
    assert_in_channel(say(bot, "/arrivals", "poland 41"), "*81 on duty*")
    assert_in_channel(say(bot, "/arrivals", "poland 41", user=BORIS), "*122 on duty*")
    assert bot.count(Movement) == 3


# -- errors nobody expected -----------------------------------------------------------------------


def test_unexpected_error_shows_an_id_and_no_trace(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(home_boards, "mark_stale", broken)  # fails after the row was added
    caplog.set_level(logging.ERROR)

    body = say(bot, "/arrivals", "poland 40")

    assert body["response_type"] == "ephemeral"
    match = re.search(r"error id `([0-9a-f]{8})`", body["text"])
    assert match, body["text"]
    assert "nothing was recorded" in body["text"]
    for leak in ("Traceback", "RuntimeError", "hunter2", "mark_stale", ".py"):
        assert leak not in shown(body)
    assert stored(bot) == (0, 0, 0, 0)  # rolled back whole
    logged = [r for r in caplog.records if match.group(1) in r.getMessage()]
    assert logged
    assert logged[0].exc_info is not None


def test_an_answer_that_fails_after_the_commit_says_the_entry_stands(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A movement's answer is built after its commit (its entry number and totals come back with
    the COMMIT): if building it fails, the entry stands, whole, and the answer says so."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(movements, "recorded_reply", broken)
    caplog.set_level(logging.ERROR)

    body = say(bot, "/arrivals", "poland 40")

    assert body["response_type"] == "ephemeral"
    assert "Recorded, but the answer could not be shown" in body["text"]
    assert "Do not type it again" in body["text"]
    match = re.search(r"error id `([0-9a-f]{8})`", body["text"])
    assert match, body["text"]
    for leak in ("Traceback", "RuntimeError", "hunter2", "recorded_reply", ".py"):
        assert leak not in shown(body)
    assert stored(bot) == (1, 0, 1, 0)  # the entry and its log, whole
    with bot.runtime.db.session() as session:
        assert totals.mismatches(session) == []
    assert [r for r in caplog.records if match.group(1) in r.getMessage()]


def test_an_unexpected_error_on_record_again_stores_nothing_and_says_so(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    say(bot, "/arrivals", "poland 40")
    prompt = say(bot, "/arrivals", "poland 40")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(movements, "recorded_reply", broken)
    bot.client.post_action(
        duplicates.ACTION_RECORD_AGAIN,
        buttons(prompt)["Record again"],
        user_id=ANNA,
        response_url=bot.slack.response_url("boom"),
    )
    bot.deliver()

    [answer] = responses(bot, "boom")  # no "delete the prompt", no announcement of an entry
    assert "Something went wrong on our side and nothing was recorded" in answer["text"]
    assert answer["replace_original"] is False
    assert bot.count(Movement) == 1
    [pending] = bot.rows(PendingCommand)
    assert pending.resolution is None


# -- Slack's contract: signatures, retries, health ------------------------------------------------


def test_forged_signature_is_refused(bot: RunningBot, signing_secret: str) -> None:
    body = bot.client.factory.slash_command("/arrivals", "poland 40")
    forged = SlackRequestFactory("not-the-signing-secret").headers(body)

    assert bot.client.post_raw(body, forged).status_code == 401
    headers = bot.client.factory.headers(body)
    headers["X-Slack-Signature"] = "v0=" + "0" * 64
    assert bot.client.post_raw(body, headers).status_code == 401
    unsigned = {"Content-Type": "application/x-www-form-urlencoded"}
    assert bot.client.post_raw(body, unsigned).status_code == 401
    tampered = bot.client.factory.slash_command("/arrivals", "poland 4000")
    assert bot.client.post_raw(tampered, bot.client.factory.headers(body)).status_code == 401
    assert stored(bot) == (0, 0, 0, 0)


@pytest.mark.parametrize("offset", [-301, 302])  # +302: int() rounds the future stamp down
def test_timestamp_outside_five_minutes_is_refused(bot: RunningBot, offset: int) -> None:
    body = bot.client.factory.slash_command("/arrivals", "poland 40")
    response = bot.client.post_signed(body, timestamp=int(bot.clock.now().timestamp()) + offset)
    assert response.status_code == 401
    assert stored(bot) == (0, 0, 0, 0)


def test_timestamp_within_five_minutes_is_accepted(bot: RunningBot) -> None:
    body = bot.client.factory.slash_command("/arrivals", "poland 40")
    response = bot.client.post_signed(body, timestamp=int(bot.clock.now().timestamp()) - 240)
    assert response.status_code == 200
    assert bot.count(Movement) == 1


HOME_OPENED = {"type": "app_home_opened", "user": ANNA, "channel": "D0ANNA", "tab": "home", "event_ts": "1.2"}


def test_app_home_opened_publishes_the_home_tab_once_despite_retries(bot: RunningBot) -> None:
    say(bot, "/arrivals", "poland 40")
    assert bot.client.post_event(HOME_OPENED, event_id="Ev0HOME1").status_code == 200
    assert bot.slack.calls("views.publish") == []  # after the ack, through the outbox
    bot.deliver()

    [published] = bot.slack.calls("views.publish")
    assert published.params["user_id"] == ANNA
    assert published.params["view"]["type"] == "home"
    assert "*40 on duty*" in reply_text({"blocks": published.params["view"]["blocks"]})

    retried = bot.client.post_event(
        HOME_OPENED, event_id="Ev0HOME1", retry_num=1, retry_reason="http_timeout"
    )
    assert retried.status_code == 200
    bot.deliver()
    assert len(bot.slack.calls("views.publish")) == 1

    bot.client.post_event(HOME_OPENED, event_id="Ev0HOME2")  # a new opening is a new event
    bot.deliver()
    assert len(bot.slack.calls("views.publish")) == 2


def test_health_probe(bot: RunningBot) -> None:
    http = bot.client.http
    health = http.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok", "reasons": []})
    assert http.head("/healthz").status_code == 200
    assert http.get("/slack/events").status_code == 405
    refused = http.post("/healthz")
    assert (refused.status_code, refused.headers["allow"]) == (405, "GET, HEAD")
    assert http.get("/nope").status_code == 404


def test_an_undone_entry_typed_again_is_not_a_duplicate(bot: RunningBot) -> None:
    say(bot, "/arrivals", "poland 40 at CDG")
    assert_in_channel(say(bot, "/arrivals", "undo"), "undid entry #1")
    assert_in_channel(say(bot, "/arrivals", "PL 40 at cdg"), "*40 on duty*")
    assert bot.count(Movement) == 3
