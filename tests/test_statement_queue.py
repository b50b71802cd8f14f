"""PostgreSQL's statement queue (storage/lean.py): writes whose result is not read wait for the next
statement, the transaction's BEGIN goes with its first statement, and the COMMIT with the last
writes. These tests hold the queue to what the transaction would have done without it: order,
atomicity, rollbacks, savepoints, errors, and the replay guard's check before any commit."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlmodel import Session

import storage.db
from storage import recording
from storage.db import Database
from storage.lean import Statements
from storage.models import CommandLog, Movement, SeenRequest
from storage.replays import Guard, Replayed
from tests.support.bot import RunningBot, reply_text, running_bot
from tests.support.entries import arrival
from tests.support.slack_standin import SlackStandIn

NOW = datetime(2026, 7, 20, 8, 0, tzinfo=UTC)
_LOG = (
    "INSERT INTO command_log (user_id, channel_id, command, normalized_text, created_at) "
    "VALUES (?, ?, ?, ?, ?)"
)


@pytest.fixture
def db(migrated_postgres_url: str) -> Iterator[Database]:
    database = Database.from_url(migrated_postgres_url)
    try:
        yield database
    finally:
        database.dispose()


def log(sql: Statements, user: str) -> None:
    sql.later(_LOG, (user, "C0OPS", "/arrivals", f"arrival|{user}", sql.when(NOW)))


def logged(db: Database) -> list[str]:
    with db.session() as session:
        return list(session.execute(select(CommandLog.user_id).order_by(CommandLog.id)).scalars())


def test_a_queued_write_is_seen_by_the_next_read_plain_or_orm(db: Database) -> None:
    with db.session() as session:
        sql = Statements(session)
        log(sql, "U0PLAIN")
        assert sql.one("SELECT COUNT(*) FROM command_log WHERE user_id = ?", ("U0PLAIN",)) == (1,)
        log(sql, "U0ORM")
        assert session.execute(select(func.count()).select_from(CommandLog)).scalar_one() == 2
    assert logged(db) == ["U0PLAIN", "U0ORM"]


def test_queued_writes_commit_with_the_transaction(db: Database) -> None:
    with db.session() as session:
        sql = Statements(session)
        log(sql, "U0ONE")
        log(sql, "U0TWO")  # nothing read: both go to the server with the COMMIT
    assert logged(db) == ["U0ONE", "U0TWO"]


class Failed(Exception):
    """The command failed: its transaction rolls back."""


def fail_after(db: Database, work: Callable[[Session], object]) -> None:
    """`work` in a transaction that then fails."""

    def failing() -> None:
        with db.session() as session:
            work(session)
            raise Failed

    with pytest.raises(Failed):
        failing()


def test_a_rollback_drops_the_queue_and_the_pooled_connection_does_not_carry_it(db: Database) -> None:
    fail_after(db, lambda session: log(Statements(session), "U0DROPPED"))
    for _ in range(3):  # the same pooled connection serves the next transactions
        with db.session() as session:
            log(Statements(session), "U0KEPT")
    assert logged(db) == ["U0KEPT"] * 3


def test_statements_sent_are_still_inside_the_transaction(db: Database) -> None:
    """Liaison sends BEGIN itself (the driver is in autocommit mode): a statement already sent must
    still be undone by a rollback."""

    def plain(session: Session) -> None:
        sql = Statements(session)
        log(sql, "U0SENT")
        assert sql.one("SELECT COUNT(*) FROM command_log") == (1,)  # it reached the server

    def orm(session: Session) -> None:
        session.add(
            CommandLog(user_id="U0ORM", channel_id="C0", command="/x", normalized_text="x", created_at=NOW)
        )
        session.flush()

    fail_after(db, plain)
    fail_after(db, orm)
    assert logged(db) == []


def test_a_savepoint_rolled_back_takes_only_its_own_queued_writes(db: Database) -> None:
    with db.session() as session:
        sql = Statements(session)
        log(sql, "U0BEFORE")
        savepoint = session.begin_nested()
        log(Statements(session), "U0INSIDE")
        savepoint.rollback()
        log(Statements(session), "U0AFTER")
    assert logged(db) == ["U0BEFORE", "U0AFTER"]


def test_an_error_in_a_queued_write_surfaces_as_sqlalchemys_and_nothing_is_stored(db: Database) -> None:
    with db.session() as session:
        Statements(session).later(
            "INSERT INTO seen_request (signature, expires_at) VALUES (?, ?)", ("v0=dup", NOW)
        )
    with db.session() as session:
        sql = Statements(session)
        log(sql, "U0LOST")
        sql.later("INSERT INTO seen_request (signature, expires_at) VALUES (?, ?)", ("v0=dup", NOW))
        with pytest.raises(IntegrityError):
            sql.one("SELECT 1")  # the queue goes out here, and fails
        session.rollback()
    assert logged(db) == []
    with db.session() as session:  # the connection is usable again
        log(Statements(session), "U0NEXT")
    assert logged(db) == ["U0NEXT"]


def test_insert_later_gives_the_new_rows_id_when_asked(db: Database) -> None:
    entry = arrival("U0ONE", NOW, count=3)
    with db.session() as session:
        first, _status = recording.record_movement(session, entry)
        second, _status = recording.record_movement(session, entry)
    with db.session() as session:
        ids = list(session.execute(select(Movement.id).order_by(Movement.id)).scalars())
    assert [first.id, second.id] == ids


def test_prepared_statements_outlive_rollbacks(db: Database) -> None:
    """The hot path's statements are prepared once per server session; a rollback (after which
    psycopg's own preparing would DEALLOCATE ALL) must not leave them missing."""
    for attempt in range(4):

        def sent(session: Session, attempt: int = attempt) -> None:
            log(Statements(session), f"U0ROLLED{attempt}")
            Statements(session).flush()

        fail_after(db, sent)
        with db.session() as session:
            log(Statements(session), f"U0KEPT{attempt}")
            assert Statements(session).one("SELECT COUNT(*) FROM command_log") == (1 + attempt,)
    assert logged(db) == [f"U0KEPT{attempt}" for attempt in range(4)]


def test_statements_deallocated_behind_its_back_are_prepared_again(db: Database) -> None:
    """A pooler resetting the server session (DISCARD ALL) drops the prepared statements: the
    transaction that finds them gone fails whole, and the next ones prepare them again."""
    with db.session() as session:
        log(Statements(session), "U0FIRST")
    with db.session() as session:  # the same pooled connection, its server session reset
        session.connection().connection.driver_connection.execute("DEALLOCATE ALL")

    def log_on_reset_session() -> None:
        with db.session() as session:
            log(Statements(session), "U0LOST")

    with pytest.raises(ProgrammingError):
        log_on_reset_session()
    with db.session() as session:
        log(Statements(session), "U0AGAIN")
    assert logged(db) == ["U0FIRST", "U0AGAIN"]


def test_a_replay_found_by_the_queued_guard_stops_the_commit(db: Database) -> None:
    expires = NOW + timedelta(minutes=5)
    with db.session() as session:
        Guard("v0=first", expires).remember_in(session)

    def replayed(session: Session) -> None:
        Guard("v0=first", expires).remember_in(session)
        log(Statements(session), "U0REPLAY")  # what the replayed command would have written

    with pytest.raises(Replayed), db.session() as session:
        replayed(session)
    assert logged(db) == []
    with db.session() as session:
        assert session.execute(select(func.count()).select_from(SeenRequest)).scalar_one() == 1


def count_round_trips(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Exchanges with the server: psycopg waits on its socket at least once in each (a commit or
    rollback with no transaction open returns without waiting; no pipeline mode is used).

    The liveness ping of a connection idle for PG_PING_AFTER_IDLE_S is switched off while
    counting: it is a round trip of its own that a slow machine (CI) would add between two
    requests, and it is tested in test_held_connections."""
    monkeypatch.setattr(storage.db, "PG_PING_AFTER_IDLE_S", float("inf"))
    calls = [0]
    real_wait = psycopg.Connection.wait

    def counting(
        self: psycopg.Connection[Any], gen: Generator[Any, Any, Any], *args: Any, **kwargs: Any
    ) -> Any:
        def tracked() -> Generator[Any, Any, Any]:
            waited = False
            sent = None
            while True:
                try:
                    wait = gen.send(sent)
                except StopIteration as done:
                    return done.value
                if not waited:
                    waited = True
                    calls[0] += 1
                sent = yield wait

        return real_wait(self, tracked(), *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "wait", counting)
    return calls


@pytest.fixture
def pg_bot(migrated_postgres_url: str, slack: SlackStandIn, signing_secret: str) -> Iterator[RunningBot]:
    with running_bot(migrated_postgres_url, slack, signing_secret) as running:
        yield running


def test_an_arrival_reaches_postgresql_in_one_round_trip(
    pg_bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BEGIN, the replay note, the lock, the checks (the caller's standing, the duplicate check: the
    server stops the transaction if one fails, storage.gates), the log, the ledger row, the Home
    mark, the country's totals, the totals row and the COMMIT, the reply rendered from what came
    back (it was eleven round trips, each a wait and a turn at the GIL; then two)."""
    pg_bot.reply("/arrivals", "poland 1")  # warm: connections open, statements prepared
    calls = count_round_trips(monkeypatch)
    body = pg_bot.reply("/arrivals", "poland 2", user_id="U0SECOND")
    assert "Poland now: 3 on duty" in reply_text(body)
    assert calls[0] == 1
    with pg_bot.runtime.db.session() as session:
        assert session.execute(select(func.sum(Movement.count))).scalar_one() == 3


def test_a_departure_reaches_postgresql_in_one_round_trip_and_is_still_checked(
    pg_bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A departure's on-duty figure is checked after its country's lock, in the same round trip."""
    pg_bot.reply("/arrivals", "poland 5")
    pg_bot.reply("/departures", "poland 1", user_id="U0WARM")  # warm: statements prepared
    calls = count_round_trips(monkeypatch)
    body = pg_bot.reply("/departures", "poland 2", user_id="U0SECOND")
    assert "Poland now: 2 on duty" in reply_text(body)
    assert calls[0] == 1
    refused = pg_bot.reply("/departures", "poland 3", user_id="U0THIRD")
    assert "has only 2 people on duty" in reply_text(refused)
