"""Issue 9: CSV exports (`/liaison export`, `liaison export --out`) and `/deployment history`."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlmodel import col

from bot import outbox_jobs
from bot.scheduler import run_housekeeping
from storage import exports as storage_exports
from storage import files as stored_files
from storage import outbox
from storage.exports import BOM, neutralise, to_csv
from storage.models import FilePart, OutboxMessage, OutboxStatus, StoredFile
from tests.support.bot import RunningBot, reply_text, running_bot
from tests.support.meanwhile import TypedMeanwhile
from tests.support.slack_standin import SlackStandIn

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "UADMIN"
ANNA = "U0ANNA"
INJECTION = '=HYPERLINK("http://evil.example","click")'


def parse(content: bytes) -> list[dict[str, str]]:
    assert content.startswith(BOM.encode("utf-8"))
    text = content.decode("utf-8-sig")
    assert "\r\n" in text
    return list(csv.DictReader(io.StringIO(text, newline="")))


def record_some(bot: RunningBot) -> None:
    bot.reply("/pledge", "poland 120", user_id=ADMIN, channel_id="COPS")
    bot.reply("/pledge", "poland 30 dog-team", user_id=ADMIN, channel_id="COPS")
    bot.reply("/arrivals", f"poland 40 dog-team at CDG -- {INJECTION}", user_id=ADMIN, channel_id="COPS")
    bot.reply("/arrivals", "spain 12 -- @everyone +1 -2 fine", user_id=ADMIN, channel_id="COPS")
    bot.advance(minutes=1)
    bot.reply("/arrivals", "undo", user_id=ADMIN, channel_id="COPS")  # undoes Spain's 12
    bot.reply("/alert", "raise urgence credible threat", user_id=ADMIN, channel_id="COPS")
    opened = bot.reply(
        "/incident",
        "open sev2 =HYPERLINK(1) dog team missing --country poland",
        user_id=ADMIN,
        channel_id="COPS",
    )
    assert "INC-1" in opened["text"], opened


def test_neutralising_formula_cells() -> None:
    assert neutralise("=1+2") == "'=1+2"
    assert neutralise("+33 6 12") == "'+33 6 12"
    assert neutralise("-2") == "'-2"
    assert neutralise("@SUM(A1)") == "'@SUM(A1)"
    assert neutralise("\t=1") == "'\t=1"
    assert neutralise("Gare de l'Est") == "Gare de l'Est"
    assert neutralise(-12) == -12  # numbers stay numbers
    content, rows = to_csv(["a", "b"], [["=cmd|' /C calc'!A0", 3], [None, 'é, "quoted"']])
    assert rows == 2
    assert parse(content) == [{"a": "'=cmd|' /C calc'!A0", "b": "3"}, {"a": "", "b": 'é, "quoted"'}]


def test_export_is_sent_privately_to_the_callers_dm(bot: RunningBot) -> None:
    record_some(bot)
    body = bot.reply("/liaison", "export", user_id=ADMIN, channel_id="COPS")
    assert body["response_type"] == "ephemeral"
    assert "6 CSV files for all countries are on their way to your DM" in body["text"]
    bot.deliver()
    assert [c.params["users"] for c in bot.slack.calls("conversations.open")] == [ADMIN] * 6
    files = {f.filename.split("-2026")[0]: f for f in bot.slack.uploaded_files("DADMIN")}
    assert set(files) == {
        "liaison-movements",
        "liaison-pledges",
        "liaison-notices",
        "liaison-acknowledgements",
        "liaison-incidents",
        "liaison-incident-timeline",
    }
    assert bot.slack.uploaded_files("COPS") == []  # never into the channel

    movements = parse(files["liaison-movements"].content or b"")
    assert [(m["country"], m["kind"], m["count"]) for m in movements] == [
        ("PL", "arrival", "40"),
        ("ES", "arrival", "12"),
        ("ES", "arrival", "-12"),
    ]
    assert movements[0]["note"] == "'" + INJECTION
    assert movements[0]["location"] == "CDG"
    assert movements[1]["note"] == "'@everyone +1 -2 fine"
    assert movements[2]["undoes_entry"] == movements[1]["entry"]
    assert datetime.fromisoformat(movements[0]["recorded_at"]).utcoffset() is not None
    assert movements[0]["recorded_at"].endswith("+02:00")  # July in Paris

    pledges = parse(files["liaison-pledges"].content or b"")
    assert [(p["capability"], p["headcount"]) for p in pledges] == [("", "120"), ("dog-team", "30")]
    [notice] = parse(files["liaison-notices"].content or b"")
    assert (notice["level"], notice["previous_level"], notice["reason"]) == (
        "urgence",
        "vigilance",
        "credible threat",
    )
    assert parse(files["liaison-acknowledgements"].content or b"") == []
    [incident] = parse(files["liaison-incidents"].content or b"")
    assert (incident["incident"], incident["severity"], incident["status"]) == ("INC-1", "sev2", "open")
    assert incident["title"] == "'=HYPERLINK(1) dog team missing"  # no formula runs
    assert incident["countries"] == "PL"
    timeline = parse(files["liaison-incident-timeline"].content or b"")
    assert [row["kind"] for row in timeline][:1] == ["opened"]
    assert all(row["incident"] == "INC-1" for row in timeline)


def test_export_of_one_country_and_refusal_for_others(bot: RunningBot) -> None:
    record_some(bot)
    refused = bot.reply("/liaison", "export", user_id=ANNA, channel_id="COPS")
    assert "Only the operations centre (ops) or an admin can export" in refused["text"]
    body = bot.reply("/liaison", "export spain", user_id=ADMIN, channel_id="COPS")
    assert "for Spain" in body["text"]
    bot.deliver()
    movements = next(f for f in bot.slack.uploaded_files("DADMIN") if "movements-es" in f.filename)
    assert {row["country"] for row in parse(movements.content or b"")} == {"ES"}
    uploads = len(bot.slack.uploaded_files())
    bad = bot.reply("/liaison", "export atlantis", user_id=ADMIN, channel_id="COPS")
    assert "I don't know the country `atlantis`" in reply_text(bad)
    bot.deliver()
    assert len(bot.slack.uploaded_files()) == uploads  # nothing was queued


@pytest.fixture
def bot_exporting_in_its_thread(
    migrated_database_url: str, slack: SlackStandIn, signing_secret: str
) -> Iterator[RunningBot]:
    """`LIAISON_EXPORT_PROCESS=off`: the export is read on the outbox worker's thread, where a test
    can reach into it (and where a long read is most likely to hold others up)."""
    with running_bot(migrated_database_url, slack, signing_secret, export_process=False) as bot:
        yield bot


def test_an_export_is_built_in_a_process_of_its_own(
    any_bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read and written on the worker's thread, an export held the interpreter from every command of
    the process while it ran (bench/RESULTS.md); it is built in a process of its own."""
    bot = any_bot
    record_some(bot)

    def not_here(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the export was built in the bot's own process")

    monkeypatch.setattr(outbox_jobs, "export_files", not_here)
    bot.reply("/liaison", "export", user_id=ADMIN, channel_id="COPS")
    bot.deliver()
    files = bot.slack.uploaded_files("DADMIN")
    assert len(files) == 6
    movements = next(f for f in files if "movements" in f.filename)
    assert {row["country"] for row in parse(movements.content or b"")} == {"PL", "ES"}


def test_an_export_that_fails_in_its_process_is_reported_to_ops(
    sqlite_url: str, slack: SlackStandIn, signing_secret: str
) -> None:
    with running_bot(sqlite_url, slack, signing_secret, ops_channel="C0OPSROOM") as bot:
        with bot.runtime.db.session() as session:  # a job its process cannot do: no such time zone
            outbox.build_export(
                session,
                user=ADMIN,
                country=None,
                what="all countries",
                zone="Atlantis/Capital",
                stamp="2026-07-20",
                now=bot.runtime.clock.now(),
            )
        for _ in range(10):
            bot.deliver()
            bot.advance(minutes=1)
        [report] = bot.slack.messages("C0OPSROOM")
        assert "ZoneInfoNotFoundError" in report["text"]
        assert bot.slack.uploaded_files() == []


def test_an_export_is_written_after_the_acknowledgement_and_never_holds_up_a_command(
    bot_exporting_in_its_thread: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = bot_exporting_in_its_thread
    record_some(bot)
    real_rows = storage_exports.movements_rows
    meanwhile = TypedMeanwhile(bot, "/arrivals", "italy 3", user_id=ADMIN, channel_id="COPS")

    def rows_while_someone_types(*args: Any, **kwargs: Any) -> Any:
        rows = real_rows(*args, **kwargs)
        meanwhile.type_once()  # an arrival recorded mid-export
        return rows

    monkeypatch.setattr(storage_exports, "movements_rows", rows_while_someone_types)
    body = bot.reply("/liaison", "export", user_id=ADMIN, channel_id="COPS")
    assert "on their way to your DM" in body["text"]
    assert bot.slack.uploaded_files() == []
    bot.deliver()
    assert meanwhile.reply is not None
    assert "Italy: 3 arrived" in reply_text(meanwhile.reply)  # at once, not "busy" after the lock timeout
    files = bot.slack.uploaded_files("DADMIN")
    assert len(files) == 6
    movements = next(f for f in files if "movements" in f.filename)
    assert "ES" in {row["country"] for row in parse(movements.content or b"")}
    [comment] = [f.initial_comment for f in files if f.initial_comment]
    assert "`liaison-movements-" in comment
    assert "(3 rows)" in comment


def test_an_export_cut_off_while_queueing_its_files_sends_each_file_once(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_some(bot)
    bot.reply("/liaison", "export", user_id=ADMIN, channel_id="COPS")
    real_upload = outbox.upload_file
    calls = 0

    def dies_after_two(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("the process died while queueing the export's files")
        return real_upload(*args, **kwargs)

    monkeypatch.setattr(outbox, "upload_file", dies_after_two)
    bot.deliver()
    assert bot.slack.uploaded_files() == []  # the two files queued went with the rest
    bot.advance(seconds=bot.runtime.settings.outbox_lease_seconds + 1)  # its lease lapses
    bot.deliver()
    names = [f.filename for f in bot.slack.uploaded_files("DADMIN")]
    assert len(names) == 6
    assert len(set(names)) == 6
    assert bot.count(StoredFile) == 12  # the cut-off attempt's six files were stored too

    bot.advance(minutes=5)
    run_housekeeping(bot.runtime)
    assert bot.count(StoredFile) == 6  # no upload was queued for those: kept a while, in case
    bot.advance(days=1)
    run_housekeeping(bot.runtime)
    assert (bot.count(StoredFile), bot.count(FilePart)) == (0, 0)


def test_an_export_that_cannot_be_written_is_reported_to_ops(
    sqlite_url: str, slack: SlackStandIn, signing_secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("a corrupt row")

    monkeypatch.setattr(storage_exports, "incidents_rows", broken)
    with running_bot(sqlite_url, slack, signing_secret, ops_channel="C0OPSROOM", export_process=False) as bot:
        bot.reply("/liaison", "export spain", user_id=ADMIN, channel_id="COPS")
        for _ in range(10):
            bot.deliver()
            bot.advance(minutes=1)
        [report] = bot.slack.messages("C0OPSROOM")
        assert "could not build the export for Spain requested by <@UADMIN>" in report["text"]
        assert "ValueError" in report["text"]
        assert bot.slack.uploaded_files() == []


def test_an_exports_files_go_in_parts_never_in_one_transaction_and_are_deleted_once_sent(
    bot_exporting_in_its_thread: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Queued as base64 in their outbox rows, a large export's files held SQLite's one writer for
    ~200 ms in one transaction (every command waited); they are stored a part per transaction."""
    bot = bot_exporting_in_its_thread
    monkeypatch.setattr(stored_files, "PART_SIZE", 64)
    record_some(bot)
    for n in range(30):
        bot.reply(
            "/arrivals", f"italy {n + 1} -- flight AZ{n:03d} via Nice", user_id=ADMIN, channel_id="COPS"
        )
    bot.reply("/liaison", "export", user_id=ADMIN, channel_id="COPS")
    bot.deliver()
    files = bot.slack.uploaded_files("DADMIN")
    movements = next(f for f in files if "movements" in f.filename)
    rows = parse(movements.content or b"")
    assert len(rows) == 33
    assert rows[-1]["note"] == "flight AZ029 via Nice"
    assert len(movements.content or b"") > 20 * 64  # many parts, read back in order
    with bot.runtime.db.read_session() as session:
        uploads = select(OutboxMessage.payload).where(col(OutboxMessage.method) == outbox.UPLOAD_FILE)
        payloads = session.execute(uploads).scalars().all()
        assert len(payloads) == 6
        assert max(len(payload) for payload in payloads) < 1_000  # no file content in the outbox
        assert max(len(data) for data in session.execute(select(FilePart.data)).scalars()) <= 64
    assert bot.count(StoredFile) == 6

    bot.advance(minutes=5)
    run_housekeeping(bot.runtime)  # the uploads are done: their files go
    assert (bot.count(StoredFile), bot.count(FilePart)) == (0, 0)
    assert len(bot.slack.uploaded_files("DADMIN")) == 6


def test_an_export_whose_stored_file_vanished_is_reported_to_ops_not_sent_cut_short(
    sqlite_url: str, slack: SlackStandIn, signing_secret: str
) -> None:
    with running_bot(sqlite_url, slack, signing_secret, ops_channel="C0OPSROOM") as bot:
        record_some(bot)
        bot.reply("/liaison", "export", user_id=ADMIN, channel_id="COPS")
        with bot.runtime.db.session() as session:
            job = session.execute(select(OutboxMessage).where(col(OutboxMessage.lane) == f"export:{ADMIN}"))
            assert job.scalar_one().status == OutboxStatus.PENDING
        bot.runtime.outbox.run_once()  # builds the export and queues its six uploads
        with bot.runtime.db.session() as session:  # one file's content is lost before its upload
            key = session.execute(select(StoredFile.key).limit(1)).scalar_one()
            session.execute(delete(FilePart).where(col(FilePart.file_key) == key))
        bot.deliver()
        assert len(bot.slack.uploaded_files("DADMIN")) == 5
        [report] = [m["text"] for m in bot.slack.messages("C0OPSROOM") if "could not" in m["text"]]
        assert "could not deliver the file `liaison-" in report
        assert "to <@UADMIN>: `file_missing: stored file" in report
        assert "ask for it again" in report


def test_export_from_the_command_line(bot: RunningBot, sqlite_url: str, tmp_path: Path) -> None:
    record_some(bot)
    out = tmp_path / "out"
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": sqlite_url, "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "export", "--out", str(out), "--country", "poland"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 6
    assert all("-pl-" in name for name in written)
    [movements] = [p for p in out.iterdir() if p.name.startswith("liaison-movements")]
    [row] = parse(movements.read_bytes())
    assert row["count"] == "40"
    assert row["note"].startswith("'=")
    unknown = subprocess.run(
        [sys.executable, "-m", "bot.cli", "export", "--out", str(out), "--country", "atlantis"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert unknown.returncode == 2
    assert "Unknown country" in unknown.stderr


def test_deployment_history_shows_who_when_what_and_undos(bot: RunningBot) -> None:
    bot.reply("/pledge", "spain 50", user_id=ADMIN, channel_id="COPS")
    bot.advance(minutes=1)
    bot.reply("/pledge", "spain 80", user_id=ADMIN, channel_id="COPS")
    bot.advance(minutes=1)
    bot.reply("/arrivals", "spain 12 patrol at <Orly> -- <!channel>", user_id=ANNA, channel_id="C0ES")
    bot.advance(minutes=1)
    bot.reply("/arrivals", "undo", user_id=ANNA, channel_id="C0ES")
    body = bot.reply("/deployment", "history spain", user_id=ANNA)
    text = json.dumps(body["blocks"], ensure_ascii=False)
    lines = [line for b in body["blocks"] if b["type"] == "section" for line in b["text"]["text"].split("\n")]
    assert "Spain — last 4 changes" in text
    assert "*undo* of entry #1" in lines[0]
    assert f"<@{ANNA}>" in lines[0]
    assert "*12 arrived* (patrol) at &lt;Orly&gt;" in lines[1]
    assert "<!channel>" not in text
    assert "pledge total: *80* (was 50)" in lines[2]
    assert lines[3].startswith("`09:0")
    assert "pledge total: *50*" in lines[3]


def test_history_keeps_to_the_last_20(bot: RunningBot) -> None:
    for count in range(1, 26):  # different counts: a retyped command would be asked about
        bot.reply("/arrivals", f"italy {count}", user_id=ADMIN, channel_id="COPS")
    body = bot.reply("/deployment", "history italy", user_id=ADMIN)
    assert "Italy — last 20 changes" in reply_text(body)
    assert "entry #25" in reply_text(body)
    assert "entry #5 " not in reply_text(body) + " "
    assert "*25 arrived*" in reply_text(body)
    assert "*5 arrived*" not in reply_text(body)
    empty = bot.reply("/deployment", "history malta", user_id=ADMIN)
    assert "Nothing recorded for Malta yet" in empty["text"]
    missing = bot.reply("/deployment", "history", user_id=ADMIN)
    assert "Which country?" in missing["text"]
