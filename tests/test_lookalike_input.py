"""Input that looks like something else: digits of other scripts, invisible format characters, and
the character class that was a range."""

from __future__ import annotations

import pytest

from commands.common import UsageError, clean_text
from commands.countries import resolve_country
from commands.parsing import count_from, looks_like_number
from storage.models import AlertNotice, CommandLog, Movement
from tests.support.bot import RunningBot, reply_text


@pytest.mark.parametrize(
    ("token", "value"),
    [
        ("40", 40),
        ("+40", 40),
        ("৪০", 40),  # Bengali: looks like "80", is 40 — accepted, and echoed back as 40
        ("१००", 100),  # Devanagari
        ("٤٠", 40),  # Arabic-Indic
        ("۴۰", 40),  # Extended Arabic-Indic (Persian)
        ("４０", 40),  # full-width
    ],
)
def test_digits_of_one_script_are_read(token: str, value: int) -> None:
    assert looks_like_number(token)
    assert count_from(token, maximum=5000) == value


@pytest.mark.parametrize("token", ["4٠", "৪0", "१0०", "𝟒𝟎", "𝟜𝟘", "4０"])
def test_mixed_or_styled_digits_are_refused(token: str) -> None:
    with pytest.raises(UsageError, match="mixes digits of different scripts or uses lookalike digits"):
        count_from(token, maximum=5000)


@pytest.mark.parametrize("token", ["k9", "dog-team", "eod", "z9", "Ω9"])
def test_a_word_with_a_digit_is_not_a_number(token: str) -> None:
    """`[+-−]` was the range from `+` to `−`: every letter counted as a sign."""
    assert not looks_like_number(token)


@pytest.mark.parametrize("token", ["-3", "−3", "+3", "3.5", "1,000", "40k"])
def test_signed_and_decorated_numbers_still_look_like_numbers(token: str) -> None:
    assert looks_like_number(token)


@pytest.mark.parametrize(
    "text",
    [
        "\u202epoland 40",
        "poland 40 -- \u202egnp.exe",
        "poland\u2066 40",
        "poland 40 \u200f",
        "\u061cpoland 4",
    ],
)
def test_direction_controls_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="change the reading direction"):
        clean_text(text, "/arrivals")


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("pol\u200band 40", "poland 40"),
        ("poland\u2060 40", "poland 40"),
        ("\ufeffpoland 40", "poland 40"),
        ("poland 40 -- r\u00adeady", "poland 40 -- ready"),
        ("poland 40 -- a\u200cb\u200dc", "poland 40 -- abc"),
    ],
)
def test_invisible_format_characters_are_removed(text: str, cleaned: str) -> None:
    assert clean_text(text, "/arrivals") == cleaned


@pytest.mark.parametrize("typed", ["\u202epoland", "pol\u200band", "\u2066poland\u2069", "po\u00adland"])
def test_country_lookup_ignores_format_characters(typed: str) -> None:
    assert resolve_country(typed).code == "PL"


# -- end to end ---------------------------------------------------------------------------------------


def test_bengali_digits_are_echoed_in_ascii(bot: RunningBot) -> None:
    body = bot.reply("/arrivals", "poland ৪০")
    assert "Poland: 40 arrived" in reply_text(body)
    [movement] = bot.rows(Movement)
    assert movement.count == 40


@pytest.mark.parametrize(
    ("command", "text", "expected"),
    [
        ("/arrivals", "poland 4٠", "mixes digits of different scripts"),
        ("/arrivals", "poland 𝟒𝟎", "lookalike digits"),
        ("/arrivals", "\u202epoland 40", "change the reading direction"),
        ("/arrivals", "poland 40 -- \u202eevil", "change the reading direction"),
        ("/arrivals", "poland k9", "How many? Add a number after Poland."),
        ("/pledge", "poland ৪0", "mixes digits of different scripts"),
        ("/alert", "raise urgence \u202ethreat at the stadium", "change the reading direction"),
    ],
)
def test_lookalike_input_is_refused_and_nothing_stored(
    bot: RunningBot, command: str, text: str, expected: str
) -> None:
    body = bot.reply(command, text, user_id="UADMIN")
    assert body["response_type"] == "ephemeral"
    assert expected in reply_text(body)
    assert bot.count(Movement) == bot.count(CommandLog) == bot.count(AlertNotice) == 0


def test_zero_width_characters_never_reach_storage(bot: RunningBot) -> None:
    body = bot.reply("/arrivals", "pol\u200band 4 at C\u200bDG -- two\u2060 handlers")
    assert body["response_type"] == "in_channel", reply_text(body)
    [movement] = bot.rows(Movement)
    assert (movement.country, movement.location, movement.note) == ("PL", "CDG", "two handlers")
    assert "\u200b" not in movement.command_text
