"""Pure parts of /incident: parsing, Slack text made plain, the form's checks, settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.runtime import command_config
from bot.settings import Settings
from commands.common import UsageError
from commands.incident import escalation_target, incident_id_from, parse_open, severity_from
from commands.incident_card import parse_button_value
from commands.incident_modal import ModalContext, parse_submission, prefill_from_message
from commands.incident_text import plain_text
from commands.slack_text import decode


def test_parse_open_defaults_to_sev3_and_takes_several_countries() -> None:
    request = parse_open("Dog team missing --country poland --countries spain, united kingdom")
    assert request.severity == 3
    assert request.title == "Dog team missing"
    assert [c.code for c in request.countries] == ["PL", "ES", "GB"]
    assert parse_open("SEV1 Drone —country PL —country pl").severity == 1
    assert [c.code for c in parse_open("SEV1 Drone —country PL —country pl").countries] == ["PL"]
    assert parse_open("Fight -- two injured").title == "Fight -- two injured"


@pytest.mark.parametrize(("token", "level"), [("sev1", 1), ("SEV4", 4), ("sev-2", 2), ("bag", None)])
def test_severity_from(token: str, level: int | None) -> None:
    assert severity_from(token) == level


@pytest.mark.parametrize("token", ["sev0", "sev5", "sevx", "severe", "sev"])
def test_bad_severities_are_errors(token: str) -> None:
    with pytest.raises(UsageError, match="There is no severity"):
        severity_from(token)


def test_incident_ids() -> None:
    assert incident_id_from("INC-42") == 42
    assert incident_id_from("inc-7") == 7
    for token, message in [("42", "Write incident ids as"), ("INC-x", "not an incident id"), ("#3", "INC-3")]:
        with pytest.raises(UsageError, match=message):
            incident_id_from(token)
    assert escalation_target("escalate INC-9 sev1 smoke") == 9
    assert escalation_target("update INC-9 smoke") is None


def test_the_title_limit_is_slacks_header_limit_and_never_cut() -> None:
    assert len(parse_open("x" * 150).title) == 150
    with pytest.raises(UsageError, match="151 characters"):
        parse_open("x" * 151)
    # Counted after decoding (where the command enters): `&amp;` is one character the user typed.
    assert len(parse_open(decode("&amp;" * 150)).title) == 150


def test_plain_text_decodes_once_and_defuses_markup() -> None:
    assert plain_text("R&amp;D &lt;north&gt; &amp;lt;") == "R&D <north> &lt;"
    assert (
        plain_text("<@U1|anna> <#C1|ops> <!channel> <!subteam^S1|@oncall>") == "@anna #ops @channel @oncall"
    )
    assert plain_text("<https://example.org|the map>") == "the map (https://example.org)"


def test_button_values() -> None:
    assert parse_button_value("12:3") == (12, 3)
    for value in ("12", "x:1", "", "1:y", "-1:2"):
        assert parse_button_value(value) is None


def test_modal_context_round_trip_and_garbage() -> None:
    assert ModalContext.decode(ModalContext("C1").encode()) == ModalContext("C1")
    for raw in ("", "garbage", "[]", '{"channel": ""}', '{"channel": 3}'):
        assert ModalContext.decode(raw) is None


def test_prefill_from_a_message() -> None:
    title, description = prefill_from_message("\n  Bus &amp; van held   at border\nsecond line <@U1|anna>")
    assert title == "Bus & van held at border"
    assert description == "Bus & van held   at border\nsecond line @anna"


def test_a_submission_with_an_unknown_country_code_is_an_error() -> None:
    values = {
        "severity": {"value": {"selected_option": {"value": "2"}}},
        "title": {"value": {"value": "Smoke"}},
        "countries": {"value": {"selected_options": [{"value": "XX"}]}},
    }
    assert parse_submission(values) == {"countries": "Choose countries from the list."}


def test_incident_settings() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    config = command_config(settings)
    assert config.incident_owner_timeout.total_seconds() == 600
    assert config.incident_update_timeout.total_seconds() == 1800
    assert config.escalation_channel is None
    assert config.oncall_group is None
    configured = Settings(
        _env_file=None,  # type: ignore[call-arg]
        LIAISON_ESCALATION_CHANNEL="C0ESC",
        LIAISON_ONCALL_GROUP="S0ONCALL",
        LIAISON_INCIDENT_OWNER_MINUTES=5,
        LIAISON_INCIDENT_UPDATE_MINUTES=45,
    )
    config = command_config(configured)
    assert (config.escalation_channel, config.oncall_group) == ("C0ESC", "S0ONCALL")
    assert config.incident_owner_timeout.total_seconds() == 300
    assert config.incident_update_timeout.total_seconds() == 2700
    with pytest.raises(ValidationError, match="user-group id"):
        Settings(_env_file=None, LIAISON_ONCALL_GROUP="<!subteam^S1>")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Settings(_env_file=None, LIAISON_INCIDENT_OWNER_MINUTES=0)  # type: ignore[call-arg]
