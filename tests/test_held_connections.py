"""On PostgreSQL each request thread keeps its own connection between requests (storage.held):
what the pool's checkout and checkin did for a request still happens (a dead connection replaced,
a failed transaction rolled back, connections given back), and nothing else shares it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

import storage.db
from storage.db import PG_HELD_CONNECTIONS, Database
from storage.lean import Statements

ASK_PID = text("SELECT pg_backend_pid()")


@pytest.fixture
def db(postgres_url: str) -> Iterator[Database]:
    database = Database.from_url(postgres_url)
    with database.session() as session:
        session.execute(text("CREATE TABLE note (id integer PRIMARY KEY, body text)"))
    try:
        yield database
    finally:
        database.dispose()


def request_pid(db: Database) -> int:
    with db.request_session() as session:
        return int(session.execute(ASK_PID).scalar_one())


def in_thread(work: Callable[[], object]) -> object:
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    thread.join()
    return result[0]


def terminate(postgres_url: str, pid: int) -> None:
    admin = Database.from_url(postgres_url)
    try:
        with admin.session() as session:
            session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


def notes(db: Database) -> list[tuple[int, str]]:
    with db.session() as session:
        return [
            (int(row[0]), str(row[1]))
            for row in session.execute(text("SELECT id, body FROM note ORDER BY id"))
        ]


def test_a_request_thread_keeps_its_server_connection_and_shares_it_with_no_one(db: Database) -> None:
    first = request_pid(db)
    assert request_pid(db) == first  # the same server session, request after request
    assert in_thread(lambda: request_pid(db)) != first  # another thread has its own
    with db.session() as session:  # background work uses the pool
        assert session.execute(ASK_PID).scalar_one() != first


def test_a_request_session_inside_another_is_a_transaction_of_its_own(db: Database) -> None:
    def outer() -> None:
        with db.request_session() as session:
            session.execute(text("INSERT INTO note VALUES (1, 'rolled back')"))
            with db.request_session() as inner:
                assert inner.execute(ASK_PID).scalar_one() != session.execute(ASK_PID).scalar_one()
                inner.execute(text("INSERT INTO note VALUES (2, 'committed')"))
            raise RuntimeError("the outer request fails")

    with pytest.raises(RuntimeError):
        outer()
    assert notes(db) == [(2, "committed")]


def test_a_held_connection_gone_while_idle_is_replaced_before_use(
    db: Database, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server restarted (or dropped the connection) between two requests: the request after a
    pause checks its connection first and gets a new one, with no error for the user."""
    pid = request_pid(db)
    terminate(postgres_url, pid)
    monkeypatch.setattr(storage.db, "PG_PING_AFTER_IDLE_S", 0.0)  # it has been idle long enough
    assert request_pid(db) != pid


def test_a_held_connection_that_breaks_during_a_request_is_replaced_for_the_next(
    db: Database, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Used moments ago, a connection is trusted without a round trip; if it broke meanwhile that
    request fails, and the thread's next request runs on a new connection."""
    monkeypatch.setattr(storage.db, "PG_PING_AFTER_IDLE_S", 3600.0)
    pid = request_pid(db)
    terminate(postgres_url, pid)
    with pytest.raises(DBAPIError), db.request_session() as session:
        session.execute(text("INSERT INTO note VALUES (1, 'lost with the connection')"))
    assert request_pid(db) != pid
    with db.request_session() as session:
        session.execute(text("INSERT INTO note VALUES (2, 'recorded')"))
    assert notes(db) == [(2, "recorded")]


def test_a_commit_refused_by_the_server_leaves_the_connection_ready_for_the_next_request(
    db: Database,
) -> None:
    """Statements queued for the COMMIT (storage.lean) fail there: SQLAlchemy's transaction ends
    without a rollback, so the server's must be rolled back before the thread's next request."""
    with db.request_session() as session:
        session.execute(text("INSERT INTO note VALUES (1, 'first')"))
    pid = request_pid(db)
    with pytest.raises(IntegrityError), db.request_session() as session:
        Statements(session).later("INSERT INTO note VALUES (?, ?)", (1, "a duplicate, refused at COMMIT"))
    with db.request_session() as session:
        assert session.execute(ASK_PID).scalar_one() == pid  # the same connection, usable
        session.execute(text("INSERT INTO note VALUES (2, 'second')"))
    assert notes(db) == [(1, "first"), (2, "second")]


def test_held_connections_are_bounded_and_given_back(db: Database) -> None:
    """At most PG_HELD_CONNECTIONS are held; past that a thread uses the pool; a thread that ended
    gives its connection back when its slot is wanted; dispose gives them all back."""
    pool = db.engine.pool
    release = threading.Event()
    ready = threading.Barrier(PG_HELD_CONNECTIONS + 3)
    pids: list[int] = []

    def busy_thread() -> None:
        pids.append(request_pid(db))
        ready.wait()
        release.wait()

    threads = [threading.Thread(target=busy_thread) for _ in range(PG_HELD_CONNECTIONS + 2)]
    for thread in threads:
        thread.start()
    ready.wait()
    try:
        assert len(set(pids)) == len(threads)  # every request ran, past the bound too
        assert pool.checkedout() == PG_HELD_CONNECTIONS  # type: ignore[attr-defined]
        with db.session() as session:  # background work still gets a connection
            session.execute(text("SELECT 1"))
    finally:
        release.set()
        for thread in threads:
            thread.join()
    assert pool.checkedout() == PG_HELD_CONNECTIONS  # type: ignore[attr-defined]  # held until wanted
    in_thread(lambda: request_pid(db))  # wanting a slot, it finds the threads that ended
    assert pool.checkedout() == 1  # type: ignore[attr-defined]  # its own
    db.dispose()
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
