"""The recording path in plain statements (storage/lean.py): one transaction per command, holding
the request's signature too; rows written that way read back through the ORM exactly as if the
ORM had written them; driver errors surface as SQLAlchemy's, so every error handler still applies."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import select

from storage import ledger, models, recording, totals
from storage.db import Database
from storage.lean import Statements
from tests.support.bot import RunningBot, reply_text
from tests.support.entries import arrival


@contextmanager
def captured(bot: RunningBot) -> Iterator[list[str]]:
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(bot.runtime.db.engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(bot.runtime.db.engine, "before_cursor_execute", seen)


def test_an_arrival_is_one_transaction_with_its_signature_ledger_row_log_totals_and_board_mark(
    any_bot: RunningBot,
) -> None:
    any_bot.reply("/arrivals", "poland 1")  # warm: the first command also opens connections
    with captured(any_bot) as statements:
        body = any_bot.reply("/arrivals", "poland 40 dog-team at CDG", user_id="U0SECOND")
    assert "Poland: 40 arrived" in reply_text(body)
    if any_bot.runtime.db.engine.dialect.name == "sqlite":  # psycopg begins without a statement
        assert [s for s in statements if s.startswith("BEGIN")] == ["BEGIN IMMEDIATE"], statements
    writes = [s.split("(")[0].strip() for s in statements if s.upper().startswith("INSERT")]
    assert writes == [
        "INSERT INTO seen_request",
        "INSERT INTO command_log",
        "INSERT INTO movement",
        "INSERT INTO home_board_change",  # Home boards refresh later (bot/home.py)
        "INSERT INTO deployment_total",  # last: on PostgreSQL it goes to the server with the COMMIT
    ]
    last_write = max(i for i, s in enumerate(statements) if s.upper().startswith(("INSERT", "UPDATE")))
    assert "deployment_total" in statements[last_write]


def test_rows_written_plainly_read_back_through_the_orm(any_bot: RunningBot) -> None:
    any_bot.reply("/arrivals", "poland 4 dog-team at CDG -- 2 handlers & 2 dogs")
    [movement] = any_bot.rows(models.Movement)
    assert movement.created_at == any_bot.clock.now()  # timezone-aware UTC, to the microsecond
    assert (movement.country, movement.kind, movement.count) == ("PL", models.MovementKind.ARRIVAL, 4)
    assert (movement.capability, movement.location) == ("dog-team", "CDG")
    assert movement.note == "2 handlers & 2 dogs"
    [logged] = any_bot.rows(models.CommandLog)
    assert logged.created_at == any_bot.clock.now()
    [total] = any_bot.rows(models.DeploymentTotal)
    assert (total.country, total.capability, total.arrived, total.departed) == ("PL", "dog-team", 4, 0)
    [seen] = any_bot.rows(models.SeenRequest)
    assert seen.expires_at == any_bot.clock.now().replace(microsecond=0) + timedelta(minutes=5)

    any_bot.advance(seconds=30)  # the log written plainly is what the duplicate check finds
    prompt = reply_text(any_bot.reply("/arrivals", "PL 4 dog-team at cdg"))
    assert "records the same as your entry at" in prompt


def test_a_refused_command_replayed_is_answered_as_a_replay(any_bot: RunningBot) -> None:
    factory = any_bot.client.factory
    body = factory.slash_command("/arrivals", "narnia 3")
    headers = factory.headers(body)
    first = any_bot.client.post_raw(body, headers).json()
    assert "I don't know the country" in first["text"]
    replayed = any_bot.client.post_raw(body, headers).json()
    assert "already received" in replayed["text"]
    assert any_bot.count(models.Movement) == 0


def test_driver_errors_surface_as_sqlalchemys(any_bot: RunningBot) -> None:
    now = any_bot.clock.now()
    insert = "INSERT INTO seen_request (signature, expires_at) VALUES (?, ?)"

    def insert_twice() -> None:
        with any_bot.runtime.db.session() as session:
            sql = Statements(session)
            for _ in range(2):
                sql.execute(insert, ("v0=x", sql.when(now)))

    with pytest.raises(IntegrityError):
        insert_twice()
    assert any_bot.count(models.SeenRequest) == 0  # rolled back whole


def test_postgres_arrivals_of_one_country_do_not_wait_on_each_others_totals(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two arrivals for Poland in flight at once: with the totals split over shards, the second does
    not wait for the first to commit (on one row it would, and run out of its lock timeout)."""
    db = Database.from_url(postgres_url)
    now = datetime(2026, 7, 20, tzinfo=UTC)
    try:
        db.migrate()
        shards = iter([0, 1, 0])
        monkeypatch.setattr(totals, "_pick_shard", lambda postgres: next(shards))
        with db.session() as first:
            recording.record_movement(first, arrival("U0FIRST", now))  # shard 0, not committed yet
            Statements(first).flush()  # its totals row is written, as between it and its COMMIT
            with db.session(lock_timeout_ms=200) as second:
                recording.record_movement(second, arrival("U0SECOND", now))  # shard 1: no wait
            with pytest.raises(OperationalError), db.session(lock_timeout_ms=200) as third:
                recording.record_movement(third, arrival("U0THIRD", now))  # shard 0: waits, gives up
        with db.session() as session:
            assert totals.on_duty(session, "PL", None) == 2
            assert totals.deployment_status(session, "PL")["PL"].total.arrived == 2
    finally:
        db.dispose()


def test_postgres_totals_row_goes_to_the_server_with_the_commit(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The totals row is written in the COMMIT's round trip, so an open transaction does not hold
    its row lock: a movement on the same shard does not wait for it, and both count."""
    db = Database.from_url(postgres_url)
    now = datetime(2026, 7, 20, tzinfo=UTC)
    monkeypatch.setattr(totals, "_pick_shard", lambda postgres: 0)
    try:
        db.migrate()
        with db.session() as first:
            recorded = recording.record_movement_soon(first, arrival("U0FIRST", now))  # all queued
            with db.session(lock_timeout_ms=200) as second:
                recording.record_movement(second, arrival("U0SECOND", now))  # same shard: no wait
        first_entry, _status = recorded()  # came back with the first one's COMMIT
        assert first_entry.id is not None
        with db.session() as session:
            assert totals.on_duty(session, "PL", None) == 2
            assert ledger.deployment_status(session)["PL"].total.arrived == 2
    finally:
        db.dispose()


def test_a_nested_block_rolled_back_undoes_its_plain_statements(database_url: str) -> None:
    """`with session.begin_nested()` around plain statements (a button press's handler, a Home
    refresh): rolling the block back undoes what it wrote that way, and only that."""
    db = Database.from_url(database_url)
    now = datetime(2026, 7, 20, tzinfo=UTC)
    log = "INSERT INTO command_log (user_id, channel_id, command, normalized_text, created_at) VALUES (?, ?, ?, ?, ?)"
    try:
        db.migrate()
        with db.session() as session:
            sql = Statements(session)
            sql.execute(log, ("U0BEFORE", "C0", "/arrivals", "x", sql.when(now)))

            def refused_inside_the_block() -> None:
                with session.begin_nested():
                    Statements(session).later(log, ("U0INSIDE", "C0", "/arrivals", "x", sql.when(now)))
                    raise LookupError("refused")

            with pytest.raises(LookupError):
                refused_inside_the_block()
            Statements(session).later(log, ("U0AFTER", "C0", "/arrivals", "x", sql.when(now)))
        with db.session() as session:
            kept = [
                row.user_id for row in session.exec(select(models.CommandLog).order_by(models.CommandLog.id))
            ]
        assert kept == ["U0BEFORE", "U0AFTER"]
    finally:
        db.dispose()
