"""Alert notices, the ops tracker and the acknowledgement matrix as Slack will render them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from bot.delivery_failures import delivery_failure_report
from commands.alert import status_reply
from commands.alert_levels import DEFAULT_SPEC, AlertScale, default_scale
from commands.alert_render import ACTION_ACK, notice_message
from commands.alert_render import ops_tracker as render_ops_tracker
from commands.capabilities import default_vocabulary
from commands.common import Caller, CommandConfig, CommandContext
from commands.countries import all_countries
from commands.notices import broadcast
from storage import alerts, outbox
from storage.clock import FrozenClock
from storage.db import Database
from storage.models import Acknowledgement, AlertNotice, ChannelLink, OutboxMessage, OutboxStatus
from tests.support.block_kit import (
    ESCAPED,
    HOSTILE,
    assert_valid,
    buttons,
    everything,
    texts_of,
)
from tests.support.block_kit import RAW_CONTROL as RAW

NOW = datetime(2026, 7, 20, 7, 0, tzinfo=UTC)  # 09:00 in Paris
CONFIG = CommandConfig(zone=ZoneInfo("Europe/Paris"), vocabulary=default_vocabulary(), ops_channel="COPS")


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    db = Database.from_url(f"sqlite:///{tmp_path / 'alerts.db'}")
    db.migrate()
    try:
        with db.session() as session:
            yield session
    finally:
        db.dispose()


def a_notice(
    session: Session | None = None,
    *,
    level: str = "urgence",
    previous: str = "vigilance",
    reason: str = "credible threat against the opening ceremony",
) -> AlertNotice:
    notice = AlertNotice(
        id=None if session else 7,
        level=level,
        previous_level=previous,
        reason=reason,
        set_by="U0OPS",
        created_at=NOW,
    )
    if session is not None:
        session.add(notice)
        session.flush()
    return notice


def link(session: Session, codes: list[str]) -> None:
    for index, code in enumerate(codes):
        session.add(ChannelLink(channel_id=f"C{index:08d}", country=code, linked_by="UADMIN", linked_at=NOW))
    session.flush()


def context_for(session: Session, now: datetime, config: CommandConfig = CONFIG) -> CommandContext:
    return CommandContext(
        session=session,
        caller=Caller(user_id="U0BOB", channel_id="C0ANY"),
        clock=FrozenClock(now),
        config=config,
        command="/alert",
    )


def ops_tracker(
    session: Session, notice: AlertNotice, config: CommandConfig, now: datetime
) -> tuple[str, list[dict[str, Any]]]:
    assert notice.id is not None
    countries = {d.country for d in alerts.deliveries(session, notice.id)}
    return render_ops_tracker(notice, config, countries, alerts.acknowledgements(session, notice.id), now)


def queued(session: Session) -> list[OutboxMessage]:
    return list(session.execute(select(OutboxMessage).order_by(col(OutboxMessage.id))).scalars())


def longest_named(count: int) -> list[str]:
    return [c.code for c in sorted(all_countries(), key=lambda c: (-len(c.name), c.code))[:count]]


# -- the notice ----------------------------------------------------------------------------------------


def test_notice_for_a_country_has_an_acknowledge_button() -> None:
    text, blocks = notice_message(a_notice(), CONFIG, country="PL", ack=None, now=NOW)
    assert_valid(text, blocks)
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Alert level raised: Urgence attentat", "emoji": True},
    }
    shown = everything(text, blocks)
    assert ":red_circle: *Urgence attentat* (was Vigilance)" in shown
    assert "*Reason:* credible threat against the opening ceremony" in shown
    assert "Notice #7 · set by <@U0OPS> at 09:00 (Europe/Paris)" in shown
    [button] = buttons(blocks)
    assert (button["action_id"], button["value"], button["text"]["text"]) == (
        ACTION_ACK,
        "7",
        "Acknowledge for Poland",
    )
    assert button["style"] == "primary"
    assert text == (
        "Alert level raised to Urgence attentat (was Vigilance). "
        "Reason: credible threat against the opening ceremony"
    )


def test_a_lowered_notice_says_lowered() -> None:
    notice = a_notice(level="vigilance", previous="urgence", reason="threat neutralised")
    text, blocks = notice_message(notice, CONFIG, country="ES", ack=None, now=NOW)
    assert_valid(text, blocks)
    assert blocks[0]["text"]["text"] == "Alert level lowered: Vigilance"
    assert text.startswith("Alert level lowered to Vigilance (was Urgence attentat).")


def test_an_acknowledged_notice_shows_who_and_when_and_no_button() -> None:
    ack = Acknowledgement(
        notice_id=7,
        country="PL",
        user_id="U0PL1",
        channel_id="C0PL",
        created_at=NOW + timedelta(minutes=2),
    )
    text, blocks = notice_message(a_notice(), CONFIG, country="PL", ack=ack, now=NOW + timedelta(minutes=5))
    assert_valid(text, blocks)
    assert buttons(blocks) == []
    assert ":white_check_mark: Acknowledged for *Poland* by <@U0PL1> at 09:02" in everything(text, blocks)


def test_an_acknowledgement_on_another_day_shows_the_date() -> None:
    ack = Acknowledgement(
        notice_id=7, country="PL", user_id="U0PL1", channel_id="C0PL", created_at=NOW + timedelta(hours=1)
    )
    _, blocks = notice_message(a_notice(), CONFIG, country="PL", ack=ack, now=NOW + timedelta(days=2))
    assert "by <@U0PL1> at 20 Jul 10:00" in everything("", blocks)


def test_the_tracker_version_has_no_button() -> None:
    text, blocks = notice_message(a_notice(), CONFIG, country=None, ack=None, now=NOW)
    assert_valid(text, blocks)
    assert buttons(blocks) == []


@pytest.mark.parametrize("reason", [HOSTILE, HOSTILE + " " + "<" * 430])
def test_the_reason_is_escaped_and_within_limits(reason: str) -> None:
    reason = reason[:500]
    text, blocks = notice_message(a_notice(reason=reason), CONFIG, country="PL", ack=None, now=NOW)
    assert_valid(text, blocks)
    shown = everything(text, blocks)
    for raw in RAW:
        assert raw not in shown
    for escaped in ESCAPED:
        assert escaped in text
        assert escaped in "\n".join(texts_of(blocks))


def test_long_labels_and_country_names_stay_within_limits() -> None:
    scale = AlertScale.from_spec(f"low=Low;high={'Very high alert ' * 12}:rotating_light:#ff0000")
    config = CommandConfig(zone=ZoneInfo("Europe/Paris"), vocabulary=default_vocabulary(), alert_scale=scale)
    notice = a_notice(level="high", previous="low")
    for code in longest_named(5):
        text, blocks = notice_message(notice, config, country=code, ack=None, now=NOW)
        assert_valid(text, blocks)
        [button] = buttons(blocks)
        assert len(button["text"]["text"]) <= 75
        assert len(blocks[0]["text"]["text"]) <= 150


def test_a_level_removed_from_the_configuration_still_renders() -> None:
    notice = a_notice(level="orange", previous="vigilance")
    text, blocks = notice_message(notice, CONFIG, country="PL", ack=None, now=NOW)
    assert_valid(text, blocks)
    assert "orange" in text


# -- the ops tracker -----------------------------------------------------------------------------------


def test_tracker_counts_and_names_the_waiting_countries(session: Session) -> None:
    link(session, ["PL", "ES", "IT"])
    notice = a_notice(session)
    assert notice.id is not None
    broadcast(session, notice, CONFIG, NOW)
    session.add(
        Acknowledgement(notice_id=notice.id, country="ES", user_id="U0ES1", channel_id="C1", created_at=NOW)
    )
    session.flush()
    text, blocks = ops_tracker(session, notice, CONFIG, NOW)
    assert_valid(text, blocks)
    shown = everything(text, blocks)
    assert "Acknowledged by *1 of 3 countries*. Waiting for: Italy, Poland" in shown
    assert text.endswith("— acknowledged 1/3")
    assert buttons(blocks) == []


def test_broadcast_queues_a_valid_message_per_channel_and_a_tracker(session: Session) -> None:
    codes = longest_named(60)
    link(session, codes)
    notice = a_notice(session, reason=HOSTILE)
    broadcast(session, notice, CONFIG, NOW)
    messages = queued(session)
    assert len(messages) == 61
    assert sorted(m.lane for m in messages[:-1]) == [f"C{i:08d}" for i in range(60)]
    assert messages[-1].lane == "COPS"
    for message in messages:
        assert message.method == outbox.POST_MESSAGE
        assert message.status == OutboxStatus.PENDING
        assert message.priority == outbox.URGENT  # ahead of routine messages after an outage
        payload = outbox.payload_of(message)
        assert payload["channel"] == message.lane
        assert_valid(payload["text"], payload["blocks"])
        shown = everything(payload["text"], payload["blocks"])
        for raw in RAW:
            assert raw not in shown
    tracker = outbox.payload_of(messages[-1])
    shown = everything(tracker["text"], tracker["blocks"])
    assert "Acknowledged by *0 of 60 countries*" in shown
    assert shown.count(", ") >= 39
    assert "and 20 more" in shown  # more than 40 waiting: the list is cut


# -- the status matrix ---------------------------------------------------------------------------------


def test_status_of_every_country_fits_one_message(session: Session) -> None:
    codes = [c.code for c in all_countries()]
    link(session, codes)
    notice = a_notice(session)
    assert notice.id is not None
    broadcast(session, notice, CONFIG, NOW)
    for code in codes[::3]:
        session.add(
            Acknowledgement(
                notice_id=notice.id,
                country=code,
                user_id="U0LIAISON1",
                channel_id="C0",
                created_at=NOW + timedelta(minutes=3),
            )
        )
    session.flush()
    reply = status_reply(context_for(session, NOW + timedelta(minutes=20))).to_message()
    assert_valid(reply["text"], reply["blocks"])
    assert reply["text"] == f"Notice #1: acknowledged by {len(codes[::3])} of {len(codes)} countries."
    lines = [line for line in "\n".join(texts_of(reply["blocks"][2:])).splitlines() if " · <#C" in line]
    assert lines
    assert all("pending for 20 min" in line for line in lines)  # those still to chase come first
    [cut] = [t for t in texts_of(reply["blocks"]) if ":scissors:" in t]
    assert f"{len(codes) - len(lines)} more countries not shown" in cut


def test_status_of_46_countries_is_complete(session: Session) -> None:
    codes = longest_named(46)
    link(session, codes)
    broadcast(session, a_notice(session), CONFIG, NOW)
    reply = status_reply(context_for(session, NOW + timedelta(minutes=20))).to_message()
    assert_valid(reply["text"], reply["blocks"])
    shown = "\n".join(texts_of(reply["blocks"]))
    assert shown.count("pending for 20 min") == 46
    assert ":scissors:" not in shown


def test_status_rows(session: Session) -> None:
    link(session, ["PL", "ES", "IT"])
    notice = a_notice(session)
    assert notice.id is not None
    broadcast(session, notice, CONFIG, NOW)
    session.add(
        Acknowledgement(
            notice_id=notice.id,
            country="PL",
            user_id="U0PL1",
            channel_id="C00000000",
            created_at=NOW + timedelta(minutes=3),
        )
    )
    [italy] = [m for m in queued(session) if m.lane == "C00000002"]
    italy.status = OutboxStatus.FAILED
    italy.last_error = "is_archived"
    session.add(italy)
    session.flush()
    reply = status_reply(context_for(session, NOW + timedelta(minutes=75))).to_message()
    assert_valid(reply["text"], reply["blocks"])
    lines = "\n".join(texts_of(reply["blocks"])).splitlines()
    [poland] = [line for line in lines if "*Poland*" in line]
    [spain] = [line for line in lines if "*Spain*" in line]
    [italy_line] = [line for line in lines if "*Italy*" in line]
    assert poland.endswith("<@U0PL1> at 09:03")
    assert "<#C00000000>" in poland
    assert spain.endswith("pending for 1 h 15 min")
    assert "*not delivered* (is_archived)" in italy_line
    # Pending and failed first (the ones ops must act on), acknowledged last.
    assert lines.index(poland) > lines.index(spain)
    assert reply["text"] == "Notice #1: acknowledged by 1 of 3 countries."


def test_delivery_failure_report_is_escaped_and_valid() -> None:
    message = OutboxMessage(
        method=outbox.POST_MESSAGE, lane="C0IT", payload="{}", created_at=NOW, next_attempt_at=NOW
    )
    text, blocks = delivery_failure_report(message, "not_in_channel")
    assert_valid(text, blocks)
    assert "<#C0IT>" in text
    assert "Invite Liaison" in text
    odd = OutboxMessage(
        method=outbox.RESPONSE_URL, lane="home:<!here>", payload="{}", created_at=NOW, next_attempt_at=NOW
    )
    text, _ = delivery_failure_report(odd, "<!channel>")
    assert "<!here>" not in text
    assert "<!channel>" not in text


# -- the scale ---------------------------------------------------------------------------------------


def test_the_default_scale() -> None:
    scale = default_scale()
    assert scale.keys() == ["vigilance", "renforcee", "urgence"]
    assert [level.rank for level in scale] == [0, 1, 2]
    assert scale.lowest.key == "vigilance"
    urgence = scale["urgence"]
    assert (urgence.label, urgence.emoji, urgence.colour) == ("Urgence attentat", "red_circle", "#d72b3f")
    assert scale["renforcee"].label == "Sécurité renforcée – risque attentat"
    assert AlertScale.from_spec(DEFAULT_SPEC).keys() == scale.keys()


def test_levels_are_found_whatever_the_case() -> None:
    scale = default_scale()
    level = scale.get(" URGENCE ")
    assert level is not None
    assert level.key == "urgence"
    assert scale.get("red") is None
    unknown = scale["red"]
    assert (unknown.label, unknown.rank) == ("red", -1)


def test_a_custom_scale_with_defaults() -> None:
    scale = AlertScale.from_spec(
        " green=Green ; amber=Amber:large_orange_circle ; red=Red:red_circle:#ff0000 ;"
    )
    assert scale.keys() == ["green", "amber", "red"]
    green, amber, red = list(scale)
    assert (green.emoji, green.colour) == ("rotating_light", "#888888")
    assert (amber.emoji, amber.colour) == ("large_orange_circle", "#888888")
    assert (red.label, red.emoji, red.colour, red.rank) == ("Red", "red_circle", "#ff0000", 2)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "at least one level"),
        (" ; ; ", "at least one level"),
        ("urgence", "expected key=Label"),
        ("Urgence=Urgence attentat", "lower-case key"),
        ("=Nameless", "expected key=Label"),
        ("ur gence=Label", "expected key=Label"),
        ("urgence=", "needs a label"),
        ("urgence=  :red_circle", "needs a label"),
        ("low=Low;low=Again", "unique"),
    ],
)
def test_bad_scales_are_refused_with_a_reason(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AlertScale.from_spec(spec)
