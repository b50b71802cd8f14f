"""What a command costs on the request path: the outbox worker is woken only when a command
enqueued a message, and SQLite file connections are reused with their PRAGMAs set once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

import storage.db
from bot.dispatch import run_command
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from commands import alert, arrivals, liaison
from commands.common import Caller
from storage.clock import FrozenClock
from storage.db import Database

ADMIN = "U0ADMIN"


@pytest.fixture
def runtime(sqlite_url: str) -> Iterator[Runtime]:
    config = Settings(  # type: ignore[call-arg]
        _env_file=None, slack_bot_token="xoxb-test", database_url=sqlite_url, admins=[ADMIN]
    )
    built = build_runtime(config, token="xoxb-test", clock=FrozenClock(datetime(2026, 7, 20, tzinfo=UTC)))
    built.db.migrate()
    try:
        yield built
    finally:
        built.close()


def test_the_outbox_worker_is_woken_only_when_a_message_was_enqueued(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    wakes: list[str] = []
    monkeypatch.setattr(runtime.outbox, "wake", lambda: wakes.append("woken"))
    admin = Caller(user_id=ADMIN, channel_id="C0OPS")

    reply = run_command(runtime, arrivals, admin, "poland 3")
    assert "Poland: 3 arrived" in reply.text
    assert wakes == []  # answered in the ack: nothing to deliver

    run_command(runtime, liaison, Caller(user_id=ADMIN, channel_id="C0POLAND"), "link poland")
    wakes.clear()
    reply = run_command(runtime, alert, admin, "raise urgence drill")
    assert "1 liaison channel" in reply.text
    assert wakes == ["woken"]  # a notice to deliver


def test_sqlite_file_connections_are_reused_and_durable(tmp_path: Path) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'pool.db'}")
    db.migrate()
    try:
        seen: set[int] = set()
        for _ in range(5):
            with db.session() as session:
                connection = session.connection().connection.dbapi_connection
                seen.add(id(connection))
                assert session.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
                assert session.execute(text("PRAGMA synchronous")).scalar_one() == 2  # FULL
                assert session.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
        assert len(seen) == 1  # one thread, one long-lived connection
    finally:
        db.dispose()


def test_a_unit_of_work_stuck_holding_the_sqlite_writer_fails_its_waiters_instead_of_hanging_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage.db, "SQLITE_BUSY_TIMEOUT_MS", 50)
    db = Database.from_url(f"sqlite:///{tmp_path / 'stuck.db'}")
    db.migrate()
    holding, release = threading.Event(), threading.Event()

    def stuck() -> None:
        with db.session():
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=stuck)
    holder.start()
    try:
        assert holding.wait(30)
        with pytest.raises(OperationalError, match="database is locked"), db.session() as session:
            session.execute(text("SELECT 1"))
    finally:
        release.set()
        holder.join(30)
    with db.session() as session:  # free again once the holder is done
        assert session.execute(text("SELECT 1")).scalar_one() == 1
    db.dispose()


def test_only_the_replay_guard_may_commit_without_waiting_for_the_disk(database_url: str) -> None:
    """PostgreSQL: only `durable=False` commits skip the sync. SQLite: every commit syncs (FULL = 2),
    its cost shared by the units of work committed together (storage.db.GroupCommit)."""
    db = Database.from_url(database_url)
    sqlite = db.engine.dialect.name == "sqlite"
    ask = "PRAGMA synchronous" if sqlite else "SHOW synchronous_commit"
    relaxed = 2 if sqlite else "off"
    try:
        db.migrate()
        with db.engine.connect() as connection:  # PostgreSQL: the server's own setting (off in CI)
            durable = 2 if sqlite else connection.execute(text(ask)).scalar_one()
        for _ in range(2):  # and back again, on the same pooled connection
            with db.request_session(durable=False) as session:
                assert session.execute(text(ask)).scalar_one() == relaxed
            with db.request_session() as session:
                assert session.execute(text(ask)).scalar_one() == durable
            with db.session() as session:
                assert session.execute(text(ask)).scalar_one() == durable
    finally:
        db.dispose()


def test_postgres_request_timeouts_are_kept_per_connection_and_reset_for_background_work(
    postgres_url: str,
) -> None:
    """Requests wait at most 1.5 s for a lock; background work waits as the server says. The setting
    is kept on the pooled connection (no round trip per request), and a rollback forgets it."""
    db = Database.from_url(postgres_url)
    ask = text("SELECT current_setting('lock_timeout'), current_setting('statement_timeout')")
    try:
        db.migrate()
        with db.engine.connect() as connection:
            server = tuple(connection.execute(ask).one())
        request = ("1500ms", "2500ms")
        for _ in range(2):
            with db.request_session() as session:
                assert tuple(session.execute(ask).one()) == request
            with db.session() as session:
                assert tuple(session.execute(ask).one()) == server

        def rolled_back_request() -> None:
            with db.request_session() as session:
                assert tuple(session.execute(ask).one()) == request
                raise RuntimeError("rolled back")

        with pytest.raises(RuntimeError):
            rolled_back_request()
        with db.request_session() as session:
            assert tuple(session.execute(ask).one()) == request
        with db.session() as session:
            assert tuple(session.execute(ask).one()) == server
    finally:
        db.dispose()


def test_a_postgres_connection_gone_while_idle_is_replaced_before_use(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server restarted (or dropped the connection) while the pool held it: a connection idle
    for a while is checked first and replaced; one used moments ago is trusted (no round trip)."""
    db = Database.from_url(postgres_url)
    ask_pid = text("SELECT pg_backend_pid()")
    try:
        db.migrate()
        with db.session() as session:
            pid = session.execute(ask_pid).scalar_one()
        admin = Database.from_url(postgres_url)
        with admin.engine.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            connection.commit()
        admin.dispose()
        monkeypatch.setattr(storage.db, "PG_PING_AFTER_IDLE_S", 0.0)  # it has been idle long enough
        with db.request_session() as session:
            assert session.execute(ask_pid).scalar_one() != pid  # a new connection, no error
    finally:
        db.dispose()
