"""Issue 9: daily digests — `/digest`, scheduling at 07:00 local across DST, exactly once (catch-up,
skip, restart, two processes on PostgreSQL), the chart uploaded the files_upload_v2 way."""

from __future__ import annotations

import struct
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot import digests as digest_runner
from bot.runtime import command_config
from bot.scheduler import run_digests
from bot.settings import Settings
from commands import digest as digest_command
from commands.local_times import due_moment, exists_on, first_missing_day, parse_time_of_day
from storage import digests, outbox, recording
from storage.db import Database
from storage.models import DigestRun, DigestRunStatus, DigestSubscription, OutboxMessage
from tests.support.bot import RunningBot, reply_text, running_bot
from tests.support.meanwhile import TypedMeanwhile
from tests.support.slack_standin import SlackStandIn

ROOT = Path(__file__).resolve().parent.parent
PARIS = ZoneInfo("Europe/Paris")
ADMIN = "UADMIN"
CHANNEL = "C0DIGEST"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def paris(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=PARIS)


def subscribe(
    bot: RunningBot, text: str = "", *, channel: str = CHANNEL, user: str = ADMIN
) -> dict[str, Any]:
    return bot.reply("/digest", f"subscribe {text}".strip(), user_id=user, channel_id=channel)


def digests_in(slack: SlackStandIn, channel: str = CHANNEL) -> list[dict[str, Any]]:
    return [m for m in slack.messages(channel) if "digest" in m.get("text", "").lower()]


def delivered_digests(bot: RunningBot) -> list[str]:
    """Every digest sent to CHANNEL so far, delivered now, as text."""
    bot.deliver()
    return [reply_text(m) for m in digests_in(bot.slack)]


def runs(bot: RunningBot) -> list[DigestRun]:
    return sorted(bot.rows(DigestRun), key=lambda r: r.local_date)


def png_size(content: bytes) -> tuple[int, int]:
    assert content[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", content[16:24])
    return width, height


# -- times of day ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected_utc"),
    [
        (date(2026, 3, 28), datetime(2026, 3, 28, 6, 0, tzinfo=UTC)),  # winter time, UTC+1
        (date(2026, 3, 29), datetime(2026, 3, 29, 5, 0, tzinfo=UTC)),  # the spring change itself
        (date(2026, 3, 30), datetime(2026, 3, 30, 5, 0, tzinfo=UTC)),
        (date(2026, 10, 24), datetime(2026, 10, 24, 5, 0, tzinfo=UTC)),  # summer time, UTC+2
        (date(2026, 10, 25), datetime(2026, 10, 25, 6, 0, tzinfo=UTC)),  # the autumn change itself
        (date(2026, 10, 26), datetime(2026, 10, 26, 6, 0, tzinfo=UTC)),
    ],
)
def test_seven_oclock_is_seven_oclock_local_on_every_day(day: date, expected_utc: datetime) -> None:
    moment = due_moment(day, time(7, 0), PARIS)
    assert moment == expected_utc
    assert moment.astimezone(PARIS).strftime("%H:%M") == "07:00"


def test_times_in_the_spring_gap_are_detected_and_shifted() -> None:
    assert not exists_on(date(2026, 3, 29), time(2, 30), PARIS)
    assert exists_on(date(2026, 10, 25), time(2, 30), PARIS)  # ambiguous, but it exists
    assert first_missing_day(time(2, 30), PARIS, date(2026, 1, 1)) == date(2026, 3, 29)
    assert first_missing_day(time(7, 0), PARIS, date(2026, 1, 1)) is None
    # Were such a time stored anyway, it goes out when the clocks have jumped, never not at all.
    assert due_moment(date(2026, 3, 29), time(2, 30), PARIS).astimezone(PARIS).strftime("%H:%M") == "03:00"
    # The repeated hour in October: the first 02:30.
    assert due_moment(date(2026, 10, 25), time(2, 30), PARIS) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize("text", ["7", "07:00", "7:00", "7h", "07h00", "18.45"])
def test_time_formats(text: str) -> None:
    assert parse_time_of_day(text).hour in (7, 18)


# -- the command -------------------------------------------------------------------------------------


def test_subscribe_list_preview_unsubscribe(bot: RunningBot) -> None:
    body = subscribe(bot)
    assert body["response_type"] == "in_channel"
    assert "every day at *07:00* (Europe/Paris)" in body["text"]
    assert "all countries" in body["text"]
    [row] = bot.rows(DigestSubscription)
    assert (row.channel_id, row.local_time, row.country, row.active) == (CHANNEL, "07:00", None, True)

    again = bot.reply("/digest", "subscribe 07:00", user_id=ADMIN, channel_id=CHANNEL)
    assert "already gets the digest" in again["text"]

    moved = subscribe(bot, "07:30 country poland")
    assert "*Poland*" in moved["text"]
    assert "*07:30*" in moved["text"]
    assert bot.count(DigestSubscription) == 1

    listing = reply_text(bot.reply("/digest", "list", user_id=ADMIN, channel_id="COTHER"))
    assert f"<#{CHANNEL}>" in listing
    assert "07:30" in listing
    assert "Poland" in listing

    preview = bot.reply("/digest", "preview", user_id=ADMIN, channel_id=CHANNEL)
    assert preview["response_type"] == "ephemeral"
    assert "Poland — Digest preview" in reply_text(preview)
    bot.deliver()
    assert bot.slack.messages(CHANNEL) == []  # a preview is never posted

    stopped = bot.reply("/digest", "unsubscribe", user_id=ADMIN, channel_id=CHANNEL)
    assert "No more daily digest" in stopped["text"]
    assert bot.rows(DigestSubscription)[0].active is False
    nothing = bot.reply("/digest", "unsubscribe", user_id=ADMIN, channel_id=CHANNEL)
    assert "no digest to stop" in nothing["text"]


def test_a_linked_channel_gets_its_country_by_default(bot: RunningBot) -> None:
    bot.reply("/liaison", "link spain", user_id=ADMIN, channel_id="C0ES")
    body = subscribe(bot, "06:45", channel="C0ES")
    assert "*Spain*" in body["text"]
    assert "06:45" in body["text"]


def test_anyone_may_subscribe_their_dm_but_not_any_channel(bot: RunningBot) -> None:
    refused = bot.reply("/digest", "subscribe", user_id="U0NOBODY", channel_id=CHANNEL)
    assert "Only ops, admins" in refused["text"]
    assert bot.count(DigestSubscription) == 0
    personal = bot.reply("/digest", "subscribe 08:00", user_id="U0NOBODY", channel_id="D0NOBODY")
    assert personal["response_type"] == "ephemeral"
    assert "You will get the morning digest" in personal["text"]
    mine = reply_text(bot.reply("/digest", "list", user_id="U0NOBODY", channel_id="D0NOBODY"))
    assert "08:00" in mine


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("subscribe 25:00", "not a time of day"),
        ("subscribe 7pm", "not a time of day"),
        ("subscribe 02:30", "does not exist in Europe/Paris on 28 March 2027"),
        ("subscribe 07:00 country atlantis", "Atlantis"),
        ("subscribe 07:00 tomorrow", "is not understood"),
        ("weekly", "no sub-command"),
        ("list everything", "takes nothing after it"),
    ],
)
def test_bad_input_is_explained_and_stores_nothing(bot: RunningBot, text: str, message: str) -> None:
    body = bot.reply("/digest", text, user_id=ADMIN, channel_id=CHANNEL)
    assert message.lower() in reply_text(body).lower()
    assert body["response_type"] == "ephemeral"
    assert bot.count(DigestSubscription) == 0


# -- scheduling --------------------------------------------------------------------------------------


def at_local(bot: RunningBot, moment: datetime) -> None:
    bot.clock.set(moment)


def test_sent_at_seven_local_across_the_spring_change(bot: RunningBot) -> None:
    at_local(bot, paris(2026, 3, 27, 12))
    subscribe(bot)
    sent_at: list[datetime] = []
    moment = paris(2026, 3, 27, 12)
    while moment < paris(2026, 3, 31, 12):  # a tick every 10 minutes, as the scheduler would (each minute)
        moment += timedelta(minutes=10)
        at_local(bot, moment)
        if run_digests(bot.runtime).sent:
            sent_at.append(moment)
    assert [m.astimezone(PARIS).strftime("%d %H:%M %z") for m in sent_at] == [
        "28 07:00 +0100",
        "29 07:00 +0200",
        "30 07:00 +0200",
        "31 07:00 +0200",
    ]
    assert [r.status for r in runs(bot)] == [DigestRunStatus.SENT] * 4


def test_sent_at_seven_local_across_the_autumn_change(bot: RunningBot) -> None:
    at_local(bot, paris(2026, 10, 24, 6, 58))
    subscribe(bot)
    due: list[str] = []
    moment = paris(2026, 10, 24, 6, 58)
    while moment < paris(2026, 10, 26, 8):
        moment += timedelta(minutes=1)
        at_local(bot, moment)
        if run_digests(bot.runtime).sent:
            due.append(moment.astimezone(UTC).strftime("%d %H:%M"))
    assert due == ["24 05:00", "25 06:00", "26 06:00"]  # 07:00 CEST, then 07:00 CET twice


def test_a_digest_is_delivered_with_its_chart(any_bot: RunningBot) -> None:
    bot = any_bot
    bot.reply("/pledge", "poland 120", user_id=ADMIN, channel_id="COPS")
    bot.reply("/arrivals", "poland 40 dog-team", user_id=ADMIN, channel_id="COPS")
    subscribe(bot, "10:00")  # START is 09:00 in Paris
    bot.advance(hours=1)
    report = run_digests(bot.runtime)
    assert report.sent == [f"{CHANNEL} 2026-07-20"]
    bot.deliver()
    [message] = bot.slack.messages(CHANNEL)
    text = reply_text(message)
    assert "Morning digest — Monday 20 July" in text
    assert "+40" in text
    assert "Poland" in text
    assert "Biggest gaps against pledges" in text
    # The chart: files_upload_v2's three steps, a real PNG, shared into the digest's channel.
    assert len(bot.slack.calls("files.getUploadURLExternal")) == 1
    assert len([c for c in bot.slack.calls() if c.method.startswith("upload:")]) == 1
    [upload] = bot.slack.uploaded_files(CHANNEL)
    assert upload.content is not None
    width, height = png_size(upload.content)
    assert (width, height) == (1000, 900)
    assert 10_000 < len(upload.content) < 1_000_000
    assert upload.filename == "liaison-digest-2026-07-20.png"
    # The digest went first; the chart followed.
    order = [
        c.method
        for c in bot.slack.calls()
        if c.method in ("chat.postMessage", "files.completeUploadExternal")
    ]
    assert order[-2:] == ["chat.postMessage", "files.completeUploadExternal"]


def test_a_failing_upload_never_holds_back_the_digest(bot: RunningBot) -> None:
    subscribe(bot, "10:00")
    bot.advance(hours=1)
    bot.slack.fail("files.getUploadURLExternal", status=200, error="missing_scope", times=100)
    run_digests(bot.runtime)
    bot.deliver()
    assert len(digests_in(bot.slack)) == 1
    assert bot.slack.uploaded_files(CHANNEL) == []
    with bot.runtime.db.session() as session:
        [upload] = session.execute(
            select(OutboxMessage).where(OutboxMessage.method == outbox.UPLOAD_FILE)  # type: ignore[arg-type]
        ).scalars()
        assert upload.last_error == "missing_scope"


def test_each_digest_reports_movements_since_the_previous_one(any_bot: RunningBot) -> None:
    bot = any_bot
    subscribe(bot, "10:00")
    bot.reply("/arrivals", "spain 7", user_id=ADMIN, channel_id="COPS")
    bot.reply("/pledge", "spain 30", user_id=ADMIN, channel_id="COPS")
    bot.advance(hours=1)
    run_digests(bot.runtime)
    bot.advance(hours=2)
    bot.reply("/arrivals", "italy 11", user_id=ADMIN, channel_id="COPS")
    bot.reply("/pledge", "italy 40", user_id=ADMIN, channel_id="COPS")
    bot.advance(hours=22)
    run_digests(bot.runtime)
    bot.deliver()
    first, second = (reply_text(m) for m in digests_in(bot.slack))
    assert "Spain: +7 arrived" in first
    assert "Spain pledge (total): none → *30*" in first
    assert "Italy" not in first.split("Biggest gaps")[0]
    assert "Italy: +11 arrived" in second
    assert "Italy pledge (total): none → *40*" in second
    assert "Spain: +7" not in second
    assert "Spain pledge" not in second
    assert "Since yesterday 10:00" in second


def test_a_preview_shows_what_the_next_digest_will_report(any_bot: RunningBot) -> None:
    bot = any_bot
    subscribe(bot, "10:00")
    bot.reply("/arrivals", "spain 7", user_id=ADMIN, channel_id="COPS")
    bot.advance(hours=1)
    run_digests(bot.runtime)
    bot.advance(hours=2)
    bot.reply("/arrivals", "italy 11", user_id=ADMIN, channel_id="COPS")
    bot.advance(minutes=1)
    preview = reply_text(bot.reply("/digest", "preview", user_id=ADMIN, channel_id=CHANNEL))
    assert "Italy: +11 arrived" in preview
    assert "Spain: +7" not in preview  # in the digest already sent


def test_a_digest_after_a_restore_into_another_postgresql_server_reports_by_time(
    migrated_postgres_url: str, slack: SlackStandIn, signing_secret: str
) -> None:
    """A restored dump keeps the previous digest's snapshot, whose transaction ids belong to the old
    server: the next digest then reports by time (once), rather than miss what the snapshot hides."""
    with running_bot(migrated_postgres_url, slack, signing_secret) as bot:
        subscribe(bot, "10:00")
        bot.advance(hours=1)
        run_digests(bot.runtime)
        with bot.runtime.db.session() as session:
            (run,) = session.execute(select(DigestRun)).scalars().all()
            assert run.snapshot is not None  # stored by the digest, for the next one
            run.snapshot = "4000000000:4000000000:"  # as if from an older, busier server
            session.add(run)
        bot.advance(hours=2)
        bot.reply("/arrivals", "italy 11", user_id=ADMIN, channel_id="COPS")
        bot.advance(hours=22)
        run_digests(bot.runtime)
        texts = delivered_digests(bot)
        assert len(texts) == 2
        assert "Italy: +11 arrived" in texts[1]


def test_a_missed_digest_is_caught_up_within_the_grace_period(bot: RunningBot) -> None:
    at_local(bot, paris(2026, 7, 20, 12))
    subscribe(bot)
    at_local(bot, paris(2026, 7, 21, 9, 40))  # the bot was down at 07:00; back 2 h 40 later
    assert run_digests(bot.runtime).sent == [f"{CHANNEL} 2026-07-21"]
    [run] = runs(bot)
    assert run.status == DigestRunStatus.SENT
    assert run.reason is not None
    assert "2 h 40 late" in run.reason
    assert run_digests(bot.runtime).sent == []


def test_a_digest_missed_beyond_the_grace_period_is_skipped_with_the_reason(any_bot: RunningBot) -> None:
    bot = any_bot
    at_local(bot, paris(2026, 7, 20, 12))
    subscribe(bot)
    at_local(bot, paris(2026, 7, 21, 10, 30))  # 3 h 30 late: beyond the default 3 h
    report = run_digests(bot.runtime)
    assert report.sent == []
    assert report.skipped == [f"{CHANNEL} 2026-07-21"]
    [run] = runs(bot)
    assert run.status == DigestRunStatus.SKIPPED
    assert run.reason is not None
    assert "3 h 30 late" in run.reason
    assert "3 h 00 grace" in run.reason
    bot.deliver()
    assert digests_in(bot.slack) == []
    listing = reply_text(bot.reply("/digest", "list", user_id="U0SOMEONE", channel_id=CHANNEL))
    assert "2026-07-21: skipped" in listing
    # The next morning it goes out as usual.
    at_local(bot, paris(2026, 7, 22, 7))
    assert run_digests(bot.runtime).sent == [f"{CHANNEL} 2026-07-22"]


def test_every_day_liaison_was_down_is_recorded_as_skipped(bot: RunningBot) -> None:
    at_local(bot, paris(2026, 7, 20, 12))
    subscribe(bot)
    at_local(bot, paris(2026, 7, 24, 8))  # down from Tuesday to Friday morning
    report = run_digests(bot.runtime)
    assert report.skipped == [f"{CHANNEL} 2026-07-{day}" for day in (21, 22, 23)]
    assert report.sent == [f"{CHANNEL} 2026-07-24"]  # an hour late: within the grace period
    assert sorted((run.local_date, run.status) for run in runs(bot)) == [
        ("2026-07-21", DigestRunStatus.SKIPPED),
        ("2026-07-22", DigestRunStatus.SKIPPED),
        ("2026-07-23", DigestRunStatus.SKIPPED),
        ("2026-07-24", DigestRunStatus.SENT),
    ]
    assert not run_digests(bot.runtime)  # each day settled once


def test_a_subscription_made_after_todays_time_starts_tomorrow(bot: RunningBot) -> None:
    at_local(bot, paris(2026, 7, 20, 8))
    subscribe(bot, "07:00")
    assert not run_digests(bot.runtime)
    assert runs(bot) == []


def test_a_crash_while_building_leaves_nothing_and_the_next_pass_sends(
    any_bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = any_bot
    subscribe(bot, "10:00")
    bot.advance(hours=1)
    real_render = digest_runner.render

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the process died while building the digest")

    monkeypatch.setattr(digest_runner, "render", crash)
    assert not run_digests(bot.runtime)
    assert runs(bot) == []  # the claim was rolled back with everything else
    monkeypatch.setattr(digest_runner, "render", real_render)
    bot.advance(minutes=1)
    assert run_digests(bot.runtime).sent == [f"{CHANNEL} 2026-07-20"]
    bot.deliver()
    assert len(digests_in(bot.slack)) == 1


def arrival_typed_while_gathering(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch, reader: ModuleType
) -> TypedMeanwhile:
    """An officer types `/arrivals poland 3` while `reader.gather` reads a digest's figures."""
    real_gather = reader.gather
    meanwhile = TypedMeanwhile(bot, "/arrivals", "poland 3", user_id=ADMIN, channel_id="COPS")

    def gather_while_someone_types(*args: Any, **kwargs: Any) -> Any:
        data = real_gather(*args, **kwargs)
        meanwhile.type_once()
        return data

    monkeypatch.setattr(reader, "gather", gather_while_someone_types)
    return meanwhile


def test_building_a_digest_never_holds_up_a_command(
    any_bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = any_bot
    subscribe(bot, "10:00")
    bot.advance(hours=1)
    meanwhile = arrival_typed_while_gathering(bot, monkeypatch, digest_runner)
    assert run_digests(bot.runtime).sent == [f"{CHANNEL} 2026-07-20"]
    assert meanwhile.reply is not None
    assert "Poland: 3 arrived" in reply_text(meanwhile.reply)  # at once, not "busy" after the lock timeout
    bot.deliver()
    assert len(digests_in(bot.slack)) == 1


def test_a_preview_being_built_never_holds_up_a_command(
    any_bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = any_bot
    subscribe(bot, "10:00")
    bot.reply("/arrivals", "poland 5", user_id=ADMIN, channel_id="COPS")
    bot.advance(minutes=1)
    meanwhile = arrival_typed_while_gathering(bot, monkeypatch, digest_command)
    preview = bot.reply("/digest", "preview", user_id=ADMIN, channel_id=CHANNEL)
    assert meanwhile.reply is not None
    assert "Poland: 3 arrived" in reply_text(meanwhile.reply)  # at once, not "busy" after the lock timeout
    assert "Digest preview" in reply_text(preview)
    assert "+5 arrived" in reply_text(preview)  # its snapshot was taken before the second arrival


def test_a_movement_at_the_end_of_a_window_is_in_the_next_one_on_sqlite(bot: RunningBot) -> None:
    """[since, until): one recorded exactly at a digest's moment is reported by the next digest, not
    both (SQLite compares the stored text: a row written without `.000000` sorted before its own
    instant). PostgreSQL windows by snapshot instead (the next test)."""
    bot.reply("/arrivals", "poland 5", user_id=ADMIN, channel_id="COPS")
    now = bot.runtime.clock.now()
    with bot.runtime.db.read_session() as session:
        assert digests.movement_totals_between(session, digests.Window(now - timedelta(hours=1), now)) == {}
        following = digests.movement_totals_between(session, digests.Window(now, now + timedelta(hours=1)))
    assert following["PL"].arrived == 5


def test_a_movement_recorded_at_the_digests_very_moment_is_in_exactly_one_digest(
    any_bot: RunningBot,
) -> None:
    bot = any_bot
    subscribe(bot, "10:00")
    bot.advance(hours=1)
    bot.reply("/arrivals", "poland 5", user_id=ADMIN, channel_id="COPS")
    run_digests(bot.runtime)  # the same instant: timed at the digest's "now", committed before it read
    bot.reply("/arrivals", "spain 2", user_id=ADMIN, channel_id="COPS")
    bot.advance(days=1)
    run_digests(bot.runtime)
    texts = delivered_digests(bot)
    assert len(texts) == 2
    assert sum("Poland: +5 arrived" in text for text in texts) == 1
    assert sum("Spain: +2 arrived" in text for text in texts) == 1


def test_a_preview_that_fails_says_nothing_was_recorded(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("the ledger cannot be read")

    monkeypatch.setattr(digest_command, "gather", broken)
    preview = bot.reply("/digest", "preview", user_id=ADMIN, channel_id=CHANNEL)
    assert "Something went wrong on our side and nothing was recorded" in reply_text(preview)
    assert "Traceback" not in reply_text(preview)


def test_an_arrival_committing_as_a_digest_starts_is_reported_exactly_once(
    any_bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timed 09:59, committed after the 10:00 digest read: in the next digest, never in neither.
    SQLite: the digest takes its snapshot in a turn of the writer's, after the arrival commits.
    PostgreSQL: the digest does not wait; the next one reports what its snapshot could not see."""
    bot = any_bot
    subscribe(bot, "10:00")
    bot.advance(minutes=59)
    recorded, release = threading.Event(), threading.Event()
    real_record = recording.record_movement_soon

    def record_then_stall(*args: Any, **kwargs: Any) -> Any:
        result = real_record(*args, **kwargs)
        recorded.set()
        release.wait(10)  # written and timed 09:59, not yet committed
        return result

    monkeypatch.setattr(recording, "record_movement_soon", record_then_stall)
    replies: list[dict[str, Any]] = []
    officer = threading.Thread(
        target=lambda: replies.append(bot.reply("/arrivals", "spain 7", user_id=ADMIN, channel_id="COPS"))
    )
    officer.start()
    assert recorded.wait(10)
    bot.advance(minutes=1)  # 10:00: the digest is due and starts while the arrival is uncommitted
    digest = threading.Thread(target=run_digests, args=(bot.runtime,))
    digest.start()
    group = bot.runtime.db._group
    if group is None:  # PostgreSQL: read and claimed without waiting for the arrival
        digest.join(10)
        assert not digest.is_alive()
    else:
        while digest.is_alive() and group._waiting == 0:  # until it waits for its snapshot, or is done
            threading.Event().wait(0.001)
    release.set()
    officer.join(10)
    digest.join(10)
    assert "Spain: 7 arrived" in reply_text(replies[0])
    bot.advance(days=1)
    run_digests(bot.runtime)
    texts = delivered_digests(bot)
    assert len(texts) == 2
    assert sum("Spain: +7 arrived" in text for text in texts) == 1  # in one of them, never lost


def test_a_restart_after_the_claim_sends_once(
    sqlite_url: str, slack: SlackStandIn, signing_secret: str
) -> None:
    with running_bot(sqlite_url, slack, signing_secret) as first:
        subscribe(first, "10:00")
        first.advance(hours=1)
        assert run_digests(first.runtime).sent
        now = first.clock.now()
        # The process stops here: the digest is in the outbox, not yet delivered.
    with running_bot(sqlite_url, slack, signing_secret) as second:
        second.clock.set(now + timedelta(minutes=1))
        assert not run_digests(second.runtime)
        second.deliver()
        second.clock.set(now + timedelta(hours=2))
        assert not run_digests(second.runtime)
        second.deliver()
    assert len(digests_in(slack)) == 1
    assert len(slack.uploaded_files(CHANNEL)) == 1


@pytest.mark.postgres
def test_two_processes_on_postgresql_send_each_digest_once(postgres_url: str) -> None:
    settings = Settings(_env_file=None, database_url=postgres_url)  # type: ignore[call-arg]
    config = command_config(settings)
    setup = Database.from_url(postgres_url)
    setup.migrate()
    start = paris(2026, 7, 20, 6)
    with setup.session() as session:
        for index in range(12):
            session.add(
                DigestSubscription(
                    channel_id=f"C{index:04d}",
                    local_time="07:00",
                    active_since=start,
                    created_by=ADMIN,
                    created_at=start,
                )
            )
    now = paris(2026, 7, 20, 7, 1)
    processes = [Database.from_url(postgres_url) for _ in range(2)]
    barrier = threading.Barrier(2)
    reports: list[digest_runner.DueReport] = []

    def run(db: Database) -> None:
        barrier.wait()
        reports.append(digest_runner.send_due(db, config, now, grace=timedelta(hours=3), charts=False))

    threads = [threading.Thread(target=run, args=(db,)) for db in processes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert sorted(label for r in reports for label in r.sent) == [
            f"C{i:04d} 2026-07-20" for i in range(12)
        ]
        with setup.session() as session:
            posts = (
                session.execute(
                    select(OutboxMessage).where(OutboxMessage.method == outbox.POST_MESSAGE)  # type: ignore[arg-type]
                )
                .scalars()
                .all()
            )
            assert sorted(p.lane for p in posts) == [f"C{i:04d}" for i in range(12)]
            assert len(session.execute(select(DigestRun)).scalars().all()) == 12
    finally:
        for db in [*processes, setup]:
            db.dispose()


def add_due_subscriptions(url: str, count: int) -> None:
    """Subscriptions whose time was a minute ago (real time: the CLI reads the system clock)."""
    db = Database.from_url(url)
    db.migrate()
    now = datetime.now(UTC)
    local_time = (now.astimezone(PARIS) - timedelta(minutes=1)).strftime("%H:%M")
    with db.session() as session:
        for index in range(count):
            session.add(
                DigestSubscription(
                    channel_id=f"C0CLI{index:02d}",
                    local_time=local_time,
                    active_since=now - timedelta(days=2),
                    created_by=ADMIN,
                    created_at=now - timedelta(days=2),
                )
            )
    db.dispose()


def send_due_command(url: str, tmp_path: Path) -> subprocess.Popen[str]:
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": url, "HOME": str(tmp_path)}
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "digest", "send-due"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_send_due_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    add_due_subscriptions(url, 1)
    first = send_due_command(url, tmp_path)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert "digest sent: C0CLI00" in out
    assert "a running `liaison serve` delivers them" in out
    second = send_due_command(url, tmp_path)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert "No digest is due." in out


def test_two_send_due_processes_on_postgresql_send_once(postgres_url: str, tmp_path: Path) -> None:
    add_due_subscriptions(postgres_url, 8)
    processes = [send_due_command(postgres_url, tmp_path) for _ in range(2)]
    outputs = [process.communicate(timeout=180) for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    sent = sorted(line for out, _ in outputs for line in out.splitlines() if line.startswith("digest sent:"))
    assert len(sent) == 8
    assert len(set(sent)) == 8
    db = Database.from_url(postgres_url)
    try:
        with db.session() as session:
            posts = (
                session.execute(
                    select(OutboxMessage).where(OutboxMessage.method == outbox.POST_MESSAGE)  # type: ignore[arg-type]
                )
                .scalars()
                .all()
            )
            assert sorted(p.lane for p in posts) == [f"C0CLI{i:02d}" for i in range(8)]
            statuses = [run.status for run in session.execute(select(DigestRun)).scalars()]
            # Today's sent once; yesterday's (long past: nothing ran then) recorded as skipped once.
            assert sorted(statuses) == [DigestRunStatus.SENT] * 8 + [DigestRunStatus.SKIPPED] * 8
    finally:
        db.dispose()


def test_the_scheduler_can_be_turned_off(sqlite_url: str, slack: SlackStandIn, signing_secret: str) -> None:
    from bot.cli import start_background_services

    with running_bot(sqlite_url, slack, signing_secret, scheduler=False) as off:
        stops = start_background_services(off.runtime)
        try:
            assert len(stops) == 1  # the outbox only
        finally:
            for stop in stops:
                stop()


def test_the_scheduler_ticks_the_digests_every_minute_in_the_configured_zone(bot: RunningBot) -> None:
    from bot.scheduler import DIGEST_JOB, build_scheduler

    scheduler = build_scheduler(bot.runtime)
    job = scheduler.get_job(DIGEST_JOB)
    assert job is not None
    assert str(job.trigger.timezone) == "Europe/Paris"
    after = datetime(2026, 7, 21, 6, 59, 45, tzinfo=PARIS)
    assert job.trigger.get_next_fire_time(None, after) == datetime(2026, 7, 21, 7, 0, 30, tzinfo=PARIS)


def test_unsubscribing_and_subscribing_again_the_same_day_sends_no_second_digest(bot: RunningBot) -> None:
    at_local(bot, paris(2026, 7, 20, 6))
    subscribe(bot)
    at_local(bot, paris(2026, 7, 20, 7))
    assert run_digests(bot.runtime).sent
    bot.reply("/digest", "unsubscribe", user_id=ADMIN, channel_id=CHANNEL)
    body = subscribe(bot, "08:00")
    assert "will get again" in body["text"]
    at_local(bot, paris(2026, 7, 20, 8, 1))
    assert not run_digests(bot.runtime)
    at_local(bot, paris(2026, 7, 21, 8))
    assert run_digests(bot.runtime).sent == [f"{CHANNEL} 2026-07-21"]
    bot.reply("/digest", "unsubscribe", user_id=ADMIN, channel_id=CHANNEL)
    at_local(bot, paris(2026, 7, 22, 8))
    assert not run_digests(bot.runtime)  # nothing for an inactive subscription


def test_a_country_channel_digest_says_whether_the_country_acknowledged(bot: RunningBot) -> None:
    bot.reply("/liaison", "link poland", user_id=ADMIN, channel_id="C0PL")
    bot.reply("/liaison", "link spain", user_id=ADMIN, channel_id="C0ES")
    subscribe(bot, "10:00", channel="C0PL")
    bot.reply("/alert", "raise urgence credible threat", user_id=ADMIN, channel_id="COPS")
    bot.deliver()
    bot.advance(hours=1)
    run_digests(bot.runtime)
    bot.deliver()
    [digest] = digests_in(bot.slack, "C0PL")
    text = reply_text(digest)
    assert "Poland — Morning digest" in text
    assert "*Poland has not acknowledged it yet*" in text
    assert "Spain" not in text


@pytest.mark.parametrize(("value", "expected"), [("off", False), ("on", True), ("false", False)])
def test_liaison_scheduler_setting(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("LIAISON_SCHEDULER", value)
    monkeypatch.setenv("LIAISON_DIGEST_GRACE_MINUTES", "90")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.scheduler is expected
    assert settings.digest_grace_minutes == 90


def test_a_chart_upload_that_fails_once_is_retried(bot: RunningBot) -> None:
    subscribe(bot, "10:00")
    bot.advance(hours=1)
    bot.slack.fail("files.completeUploadExternal", status=500)
    run_digests(bot.runtime)
    bot.deliver()
    assert len(digests_in(bot.slack)) == 1
    assert bot.slack.uploaded_files(CHANNEL) == []
    bot.advance(seconds=5)  # past the retry's backoff
    bot.deliver()
    [upload] = bot.slack.uploaded_files(CHANNEL)
    assert upload.content is not None
    assert upload.content.startswith(PNG_SIGNATURE)
    assert len(digests_in(bot.slack)) == 1
