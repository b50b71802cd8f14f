"""Unit tests of what the commands understand: `/arrivals`, `/departures`, `/pledge`, `/deployment`.

Parsing needs no database: the handler context carries `session=None`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import cast
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session

from commands import deployment, movements, pledge
from commands.capabilities import default_vocabulary
from commands.common import MAX_COMMAND_TEXT, Caller, CommandConfig, CommandContext, UsageError, clean_text
from commands.parsing import parse_tail, quote
from storage.clock import FrozenClock

# The bot's own usage line (`<country> <number>`), not user text.
USAGE_PLACEHOLDER = re.compile(r"<(country|number|place|note)>")
CONFIG = CommandConfig(zone=ZoneInfo("Europe/Paris"), vocabulary=default_vocabulary())


def context(command: str = "/arrivals", config: CommandConfig = CONFIG) -> CommandContext:
    return CommandContext(
        session=cast(Session, None),
        caller=Caller(user_id="U0LIAISON1", channel_id="C0POLAND"),
        clock=FrozenClock(datetime(2026, 7, 20, 7, 0, tzinfo=UTC)),
        config=config,
        command=command,
    )


def record(text: str, command: str = "/arrivals") -> movements.Record:
    request = movements.parse(text, command, context(command))
    assert isinstance(request, movements.Record), request
    return request


def refused(text: str, command: str = "/arrivals") -> UsageError:
    with pytest.raises(UsageError) as excinfo:
        movements.parse(text, command, context(command))
    return excinfo.value


def shown(error: UsageError) -> str:
    """What the user reads: the message and the hint."""
    return f"{error.message}\n{error.hint or ''}"


# -- countries -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "code", "name"),
    [
        ("poland", "PL", "Poland"),
        ("PL", "PL", "Poland"),
        ("POL", "PL", "Poland"),
        ("Poland", "PL", "Poland"),
        ("pl", "PL", "Poland"),
        ("united kingdom", "GB", "United Kingdom"),
        ("uk", "GB", "United Kingdom"),
        ("UK", "GB", "United Kingdom"),
        ("usa", "US", "United States"),
        ("czech republic", "CZ", "Czechia"),
        ("czechia", "CZ", "Czechia"),
        ("new zealand", "NZ", "New Zealand"),
    ],
)
def test_country_forms_are_understood(typed: str, code: str, name: str) -> None:
    request = record(f"{typed} 40")
    assert (request.country.code, request.country.name, request.count) == (code, name, 40)


def test_departures_and_arrivals_parse_alike() -> None:
    assert record("united kingdom 7", "/departures") == record("united kingdom 7", "/arrivals")


def test_unknown_country_suggests_the_closest_name() -> None:
    error = refused("polnad 40")
    assert "polnad" in error.message
    assert error.hint is not None
    assert error.hint.startswith("Did you mean *Poland*")


def test_unknown_country_without_any_close_name_explains_the_forms() -> None:
    error = refused("xx 4")
    assert "`xx`" in error.message
    assert "`PL`" in (error.hint or "")


# -- the optional tail: capability, place, note ---------------------------------------------------


def test_plain_arrival_has_no_capability_place_or_note() -> None:
    request = record("poland 40")
    assert (request.tail.capability, request.tail.location, request.tail.note) == (None, None, None)


@pytest.mark.parametrize(
    ("typed", "key"),
    [("dog-team", "dog-team"), ("k9", "dog-team"), ("dog team", "dog-team"), ("EOD", "eod"), ("swat", "ct")],
)
def test_capability_by_key_or_alias(typed: str, key: str) -> None:
    capability = record(f"poland 12 {typed}").tail.capability
    assert capability is not None
    assert capability.key == key


def test_capability_place_and_note() -> None:
    tail = record("PL 12 dog-team at CDG -- 2 handlers, 4 dogs").tail
    assert tail.capability is not None
    assert (tail.capability.key, tail.location, tail.note) == ("dog-team", "CDG", "2 handlers, 4 dogs")


def test_multi_word_place_then_note() -> None:
    tail = record("poland 3 at Gare du Nord -- train 9012").tail
    assert (tail.capability, tail.location, tail.note) == (None, "Gare du Nord", "train 9012")


@pytest.mark.parametrize("separator", ["—", "–", "--"])
def test_note_after_a_dash_or_em_dash(separator: str) -> None:
    assert record(f"poland 5 eod {separator} relief team").tail.note == "relief team"


def test_em_dash_glued_to_the_note() -> None:
    assert record("poland 5 —relief team").tail.note == "relief team"


def test_note_keeps_its_dashes_and_words_verbatim() -> None:
    assert record("poland 5 -- at CDG -- eod k9").tail.note == "at CDG -- eod k9"


def test_note_with_mentions_is_kept_verbatim_for_the_audit_trail() -> None:
    # Slack (should_escape: true) sends mentions as <@U123|bob>; the ledger keeps what was typed.
    tail = record("poland 5 -- ask <@U123|bob> and <!channel> & co").tail
    assert tail.note == "ask <@U123|bob> and <!channel> & co"


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("poland", "How many? Add a number after Poland."),
        ("poland forty", "How many? Add a number after Poland."),
        ("40 poland", "Name the country first, then the number."),
        ("poland 0", "The count must be at least 1."),
        ("poland -3", "The count can't be negative"),
        ("poland −3", "The count can't be negative"),
        ("poland 4.5", "must be a whole number, like `40` — not `4.5`"),
        ("poland 4,5", "must be a whole number, like `40` — not `4,5`"),
        ("poland 40k", "must be a whole number, like `40` — not `40k`"),
        ("poland 5001", "5,001 is more than one entry may record (at most 5,000)."),
        ("poland 99999999999999999999", "is more than one entry may record"),
        ("poland 40 blah", "I don't understand `blah`."),
        ("poland 40 eod extra", "I don't understand `extra`."),
        ("poland 40 at", "Say where after `at`"),
        ("poland 40 --", "The note after `--` is empty."),
        ("undo extra", "`/arrivals undo` takes nothing after it."),
        ("help me", "`/arrivals help` takes nothing after it."),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(text: str, expected: str) -> None:
    assert expected in refused(text).message


def test_zero_and_negative_counts_point_to_undo() -> None:
    for text in ("poland 0", "poland -3"):
        assert "undo" in (refused(text).hint or "")


def test_junk_after_the_number_lists_the_capabilities_and_usage() -> None:
    hint = refused("poland 40 blah").hint or ""
    assert "`dog-team`" in hint
    assert "Usage: `/arrivals <country> <number>" in hint


def test_misspelt_capability_is_suggested() -> None:
    assert "Did you mean `patrol`" in (refused("poland 40 patrl").hint or "")


def test_upper_bound_follows_the_configuration() -> None:
    small = CommandConfig(zone=ZoneInfo("Europe/Paris"), vocabulary=default_vocabulary(), max_per_entry=100)
    with pytest.raises(UsageError, match="at most 100"):
        movements.parse("poland 101", "/arrivals", context(config=small))
    request = movements.parse("poland 100", "/arrivals", context(config=small))
    assert isinstance(request, movements.Record)
    assert request.count == 100


def test_too_long_place_and_note_are_refused() -> None:
    assert "The place is too long" in refused("poland 4 at " + "x" * 101).message
    assert "The note is too long" in refused("poland 4 -- " + "x" * 501).message


# -- the other forms of /arrivals -----------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "today", "list", "TODAY"])
def test_no_arguments_lists_today(text: str) -> None:
    assert movements.parse(text, "/arrivals", context()) == movements.Today()


@pytest.mark.parametrize("text", ["help", "HELP", "?", "--help", "-h"])
def test_help(text: str) -> None:
    assert movements.parse(text, "/departures", context("/departures")) == movements.Help()


def test_undo() -> None:
    assert movements.parse("undo", "/arrivals", context()) == movements.Undo()
    assert movements.parse("Undo", "/departures", context("/departures")) == movements.Undo()


# -- shared text checks (every command) -----------------------------------------------------------


@pytest.mark.parametrize(
    "bad", ["poland\x0040", "poland 40\x1b[2J", "poland\x07 40", "poland 40\x7f", "poland 40\x85"]
)
def test_control_characters_are_refused(bad: str) -> None:
    with pytest.raises(UsageError, match="control characters"):
        clean_text(bad, "/arrivals")


def test_lone_surrogates_are_refused() -> None:
    with pytest.raises(UsageError, match="control characters"):
        clean_text("poland \ud800 40", "/arrivals")


def test_very_long_text_is_refused_before_any_parsing() -> None:
    with pytest.raises(UsageError) as excinfo:
        clean_text("poland 40 -- " + "x" * 4000, "/arrivals")
    assert "4,013 characters; the limit is 1,000" in excinfo.value.message
    assert "`/arrivals help`" in (excinfo.value.hint or "")


def test_text_at_the_limit_is_accepted() -> None:
    assert clean_text("a" * MAX_COMMAND_TEXT, "/arrivals") == "a" * MAX_COMMAND_TEXT


def test_whitespace_is_folded() -> None:
    assert clean_text("  poland\t40 \n eod  ", "/arrivals") == "poland 40 eod"


# -- user text echoed in errors stays escaped -----------------------------------------------------


@pytest.mark.parametrize("typed", ["<!channel>", "<@U123|bob>", "<!here>", "<https://evil.example|x>"])
def test_user_text_in_an_error_is_escaped(typed: str) -> None:
    for text in (f"{typed} 40", f"poland 40 {typed}", f"poland {typed}"):
        message = USAGE_PLACEHOLDER.sub("", shown(refused(text)))
        assert "<" not in message, message
        assert ">" not in message, message


def test_escaped_mention_is_quoted_escaped() -> None:
    error = refused("poland 40 <@U123|bob>")
    assert "`&lt;@U123|bob&gt;`" in error.message


def test_quote_escapes_and_shortens() -> None:
    assert quote("<!channel> & co") == "`&lt;!channel&gt; &amp; co`"
    assert len(quote("x" * 500)) == 82


# -- /pledge --------------------------------------------------------------------------------------


def pledge_request(text: str) -> pledge.Request:
    return pledge.parse(text, context("/pledge"))


def test_pledge_total_and_per_capability() -> None:
    assert pledge_request("poland 120") == pledge.SetPledge(record("poland 1").country, 120, None)
    request = pledge_request("PL 20 dog team")
    assert isinstance(request, pledge.SetPledge)
    assert request.capability is not None
    assert (request.country.code, request.headcount, request.capability.key) == ("PL", 20, "dog-team")


def test_pledge_of_zero_withdraws() -> None:
    request = pledge_request("poland 0 eod")
    assert isinstance(request, pledge.SetPledge)
    assert request.headcount == 0


def test_pledge_with_a_country_alone_shows_the_pledges() -> None:
    request = pledge_request("united kingdom")
    assert isinstance(request, pledge.ShowPledges)
    assert request.country.code == "GB"


@pytest.mark.parametrize("text", ["", "help", "?"])
def test_pledge_help(text: str) -> None:
    assert pledge_request(text) == pledge.Help()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("poland -1", "The pledge can't be negative"),
        ("poland 4.5", "must be a whole number"),
        ("poland 5001", "at most 5,000"),
        ("polnad 10", "I don't know the country `polnad`."),
        ("polnad", "I don't know the country `polnad`."),
        ("poland 10 sniffers", "I don't know the capability `sniffers`."),
        ("poland 10 dog xx", "Only one capability goes after the number"),
    ],
)
def test_bad_pledges_are_refused(text: str, expected: str) -> None:
    with pytest.raises(UsageError) as excinfo:
        pledge_request(text)
    assert expected in excinfo.value.message


def test_pledge_error_escapes_user_text() -> None:
    with pytest.raises(UsageError) as excinfo:
        pledge_request("poland 10 eod <!channel>")
    assert "<!channel>" not in excinfo.value.message
    assert "&lt;!channel&gt;" in excinfo.value.message


def test_negative_pledge_hint_says_how_to_withdraw() -> None:
    with pytest.raises(UsageError) as excinfo:
        pledge_request("poland -1")
    assert "Use 0 to withdraw" in (excinfo.value.hint or "")


# -- /deployment ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "all", "everyone", "ALL"])
def test_deployment_of_everyone(text: str) -> None:
    assert deployment.parse(text) == deployment.Everyone()


@pytest.mark.parametrize(("text", "code"), [("poland", "PL"), ("POL", "PL"), ("united kingdom", "GB")])
def test_deployment_of_one_country(text: str, code: str) -> None:
    request = deployment.parse(text)
    assert isinstance(request, deployment.One)
    assert request.country.code == code


def test_deployment_help() -> None:
    assert deployment.parse("help") == deployment.Help()


def test_deployment_refuses_numbers_and_unknown_countries() -> None:
    with pytest.raises(UsageError, match="takes a country, or nothing"):
        deployment.parse("poland 40")
    with pytest.raises(UsageError) as excinfo:
        deployment.parse("polnad")
    assert (excinfo.value.hint or "").startswith("Did you mean *Poland*")


# -- parse_tail directly --------------------------------------------------------------------------


def test_tail_without_location_support_refuses_at() -> None:
    with pytest.raises(UsageError, match="I don't understand `at CDG`"):
        parse_tail(["at", "CDG"], default_vocabulary(), "usage", allow_location=False)


def test_tail_accepts_at_sign_for_the_place() -> None:
    assert parse_tail(["@", "ORY"], default_vocabulary(), "usage").location == "ORY"
