"""Slack's text is entity-encoded: decoded once where it enters, escaped once where it is shown, and
sent by the tests and the shell exactly as Slack sends it."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import parse_qs, quote

import pytest
from sqlmodel import select

from bot.settings import Settings
from bot.shell import run_shell
from bot.slack_requests import encode_typed_text
from commands.slack_text import decode, show
from storage.db import Database
from storage.models import AlertNotice, Movement
from tests.support.bot import RunningBot, reply_text
from tests.support.signing import SlackRequestFactory

FIXTURES = Path("/work/shared/fixtures")


# -- the pieces --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("R&D", "R&amp;D"),
        ("bosnia & herzegovina", "bosnia &amp; herzegovina"),
        ("<north gate>", "&lt;north gate&gt;"),
        ("R&amp;D", "R&amp;amp;D"),  # a typed entity is encoded again, as Slack does
        ("cc <!channel> <@U123|anna> <#C9|ops>", "cc <!channel> <@U123|anna> <#C9|ops>"),
        ("<https://x.example/?a=1&b=2|docs> & more", "<https://x.example/?a=1&b=2|docs> &amp; more"),
    ],
)
def test_the_builder_encodes_typed_text_like_slack(typed: str, sent: str) -> None:
    assert encode_typed_text(typed) == sent
    body = SlackRequestFactory("s").slash_command("/arrivals", typed)
    assert parse_qs(body)["text"] == [sent]


def test_the_builder_matches_what_slack_sent_in_the_fixture() -> None:
    fixture = parse_qs((FIXTURES / "slash_command_entities.form").read_text().strip())
    typed = "bosnia & herzegovina 6 eod -- R&D team <north gate>, cc <!channel>"
    assert encode_typed_text(typed) == fixture["text"][0]


@pytest.mark.parametrize(
    ("sent", "text"),
    [
        ("R&amp;D", "R&D"),
        ("bosnia &amp; herzegovina", "bosnia & herzegovina"),
        ("&lt;north gate&gt;", "<north gate>"),
        ("R&amp;amp;D", "R&amp;D"),  # decoded once: `&amp;` last
        ("&amp;lt;b&amp;gt;", "&lt;b&gt;"),
        ("<@U123|anna> and <@W0GRID9>", "<@U123> and <@W0GRID9>"),
        ("<#C0OPS|ops-centre> <#G0PRIV>", "<#C0OPS> <#G0PRIV>"),
        ("<!channel> <!here> <!everyone>", "@channel @here @everyone"),
        ("<!subteam^S0ONCALL|@on-call>", "@on-call"),
        ("<!subteam^S0ONCALL>", "@subteam"),
        ("<https://evil.example|click here>", "click here (https://evil.example)"),
        ("<https://x.example>", "https://x.example"),
        ("<mailto:a@b.example|a@b.example>", "a@b.example (mailto:a@b.example)"),
    ],
)
def test_decode(sent: str, text: str) -> None:
    assert decode(sent) == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("R&D <north gate>", "R&amp;D &lt;north gate&gt;"),
        ("ping <@U123> in <#C0OPS>", "ping <@U123> in <#C0OPS>"),
        (
            "<@U123|boss> <!channel> <https://evil|x>",
            "&lt;@U123|boss&gt; &lt;!channel&gt; &lt;https://evil|x&gt;",
        ),
        ("&amp;", "&amp;amp;"),
    ],
)
def test_show_escapes_once_and_keeps_only_mentions(text: str, shown: str) -> None:
    assert show(text) == shown


@pytest.mark.parametrize(
    "typed",
    ["R&D", "a & b <c> &amp; d", "cc <!here> <@U1|x> <#C1|y>", "<https://x.example|l>", "&lt; &gt; &amp;"],
)
def test_decode_of_what_slack_sends_gives_back_what_was_typed_with_mentions_kept(typed: str) -> None:
    decoded = decode(encode_typed_text(typed))
    assert "<!" not in decoded
    assert show(decoded).count("&amp;amp;") == typed.count("&amp;")


# -- end to end ---------------------------------------------------------------------------------------


def test_r_and_d_is_stored_and_shown_once_escaped(bot: RunningBot) -> None:
    body = bot.reply("/arrivals", "poland 3 eod at R&D lab -- R&D team <north gate>")
    shown = reply_text(body)
    assert body["response_type"] == "in_channel", shown
    assert "at R&amp;D lab" in shown
    assert ">R&amp;D team &lt;north gate&gt;" in shown
    assert "&amp;amp;" not in shown
    [movement] = bot.rows(Movement)
    assert (movement.location, movement.note) == ("R&D lab", "R&D team <north gate>")
    assert movement.command_text == "/arrivals poland 3 eod at R&D lab -- R&D team <north gate>"


@pytest.mark.parametrize("typed", ["bosnia & herzegovina", "Bosnia & Herzegovina", "bosnia and herzegovina"])
def test_a_country_with_an_ampersand(bot: RunningBot, typed: str) -> None:
    body = bot.reply("/arrivals", f"{typed} 3")
    assert "Bosnia and Herzegovina: 3 arrived" in reply_text(body)
    assert [m.country for m in bot.rows(Movement)] == ["BA"]


def test_the_text_slack_sends_for_bosnia_amp_herzegovina(bot: RunningBot) -> None:
    body = bot.reply("/arrivals", "bosnia &amp; herzegovina 3", encoded=True)
    assert "Bosnia and Herzegovina: 3 arrived" in reply_text(body)


def test_a_typed_entity_stays_as_typed(bot: RunningBot) -> None:
    bot.reply("/arrivals", "poland 3 -- R&amp;D")  # the user typed the five characters `&amp;`
    [movement] = bot.rows(Movement)
    assert movement.note == "R&amp;D"


def test_the_fixture_request_as_slack_sent_it(bot: RunningBot) -> None:
    """The exact body Slack sent for a Grid user (W… id) typing `& < > @channel` in a note."""
    body = (FIXTURES / "slash_command_entities.form").read_text().strip()
    body = body.replace(
        "https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT0001%2F1234567891%2FQrStUvWxYz",
        quote(bot.slack.response_url("fixture"), safe=""),
    )  # delayed answers go to the stand-in, not to Slack
    response = bot.client.post_signed(body)
    assert response.status_code == 200
    shown = reply_text(response.json())
    assert "Bosnia and Herzegovina: 6 arrived (eod)" in shown
    assert "R&amp;D team &lt;north gate&gt;, cc @channel" in shown
    assert "<!channel>" not in shown
    assert "<@W2147483701>" in shown  # recorded by the Grid user
    [movement] = bot.rows(Movement)
    assert (movement.country, movement.recorded_by) == ("BA", "W2147483701")
    assert movement.note == "R&D team <north gate>, cc @channel"


def test_channel_typed_in_a_note_never_pings(bot: RunningBot) -> None:
    body = bot.reply("/arrivals", "poland 3 -- heads up <!channel> and <!here>")
    shown = reply_text(body)
    assert "heads up @channel and @here" in shown
    assert "<!" not in shown
    [movement] = bot.rows(Movement)
    assert movement.note == "heads up @channel and @here"


def test_a_person_mentioned_in_a_note_stays_a_mention(bot: RunningBot) -> None:
    body = bot.reply("/arrivals", "poland 3 -- handed over to <@U123|boris> in <#C0OPS|ops>")
    shown = reply_text(body)
    assert "handed over to <@U123> in <#C0OPS>" in shown
    [movement] = bot.rows(Movement)
    assert movement.note == "handed over to <@U123> in <#C0OPS>"


def test_an_alert_reason_with_an_ampersand_reaches_channels_escaped_once(bot: RunningBot) -> None:
    bot.reply("/liaison", "link poland", user_id="UADMIN", channel_id="C0PL")
    body = bot.reply("/alert", "raise urgence R&D site <east> evacuated, ask <@U123|boris>", user_id="UADMIN")
    assert body["response_type"] == "in_channel", reply_text(body)
    bot.deliver()
    [post] = bot.slack.calls("chat.postMessage", "C0PL")
    text = post.params["text"] + str(post.params["blocks"])
    assert "R&amp;D site &lt;east&gt; evacuated, ask <@U123>" in text
    assert "&amp;amp;" not in text
    [notice] = bot.rows(AlertNotice)
    assert notice.reason == "R&D site <east> evacuated, ask <@U123>"


def test_the_shell_sends_text_as_slack_does(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shell.db'}"
    out = io.StringIO()
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    lines = ["/arrivals bosnia & herzegovina 3 -- R&D <north gate> cc <!channel>", ":quit"]
    run_shell(settings, demo=False, lines=lines, out=out)
    printed = out.getvalue()
    assert "Bosnia and Herzegovina: 3 arrived" in printed
    assert "R&D <north gate> cc @channel" in printed  # the console shows what Slack would
    database = Database.from_url(url)
    try:
        with database.session() as session:
            [movement] = session.exec(select(Movement)).all()
            assert movement.note == "R&D <north gate> cc @channel"
    finally:
        database.dispose()
