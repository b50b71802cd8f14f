"""Group commit on SQLite (storage.db.GroupCommit): requests queued behind one another share one
transaction and one sync, each in a savepoint of its own; every member returns only once the group's
commit is on disk; a failing member rolls back alone; a failed commit fails every member."""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from storage import db as storage_db
from storage.db import Database, GroupCommit
from storage.lean import Statements
from storage.models import SeenRequest

EXPIRES = datetime(2026, 7, 20, tzinfo=UTC)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    built = Database.from_url(f"sqlite:///{tmp_path / 'group.db'}")
    built.migrate()
    try:
        yield built
    finally:
        built.dispose()


def committed_signatures(path: Path) -> set[str]:
    """What another connection (another process) reads: only what was committed."""
    with sqlite3.connect(path) as other:
        return {row[0] for row in other.execute("SELECT signature FROM seen_request")}


def count_commits(database: Database) -> list[int]:
    commits = [0]

    def counted(_conn: Any) -> None:
        commits[0] += 1

    event.listen(database.engine, "commit", counted)
    return commits


def group_of(database: Database) -> GroupCommit:
    group = database._group
    assert group is not None
    return group


@contextmanager
def turn_held_by_background_work(database: Database) -> Iterator[None]:
    """A long background unit of work holds the writer's turn for the duration of the block."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with database.session():
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join(10)


def queue_behind_a_held_turn(
    database: Database, units: list[str], fail: str | None = None, roll_back: str | None = None
) -> list[Any]:
    """One request holds the turn while `units` more queue behind it; then all run. Each thread's
    outcome: "committed" (its row readable by another connection the moment it returned) or the error."""
    path = Path(str(database.engine.url.database))
    group = group_of(database)
    holding, release = threading.Event(), threading.Event()
    outcomes: list[Any] = [None] * (len(units) + 1)

    def unit(index: int, signature: str) -> None:
        try:
            with database.request_session() as session:
                if index == 0:
                    holding.set()
                    release.wait(10)
                session.add(SeenRequest(signature=signature, expires_at=EXPIRES))
                if signature == fail:
                    session.flush()
                    raise RuntimeError("this unit fails")
                if signature == roll_back:
                    session.flush()
                    session.rollback()  # this unit's work so far, not the group's
                    session.add(SeenRequest(signature=f"{signature}-kept", expires_at=EXPIRES))
            outcomes[index] = "committed" if signature in committed_signatures(path) else "not on disk"
        except Exception as error:
            outcomes[index] = error

    first = threading.Thread(target=unit, args=(0, "v0=first"))
    first.start()
    assert holding.wait(10)
    others = [threading.Thread(target=unit, args=(i + 1, s)) for i, s in enumerate(units)]
    for thread in others:
        thread.start()
    while group._waiting < len(units):
        threading.Event().wait(0.001)
    release.set()
    for thread in [first, *others]:
        thread.join(10)
    return outcomes


def test_queued_requests_share_one_commit_and_each_returns_after_it(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(GroupCommit, "MAX_GROUP_AGE_S", 60.0)  # however long the first holds its turn
    commits = count_commits(database)
    signatures = [f"v0=queued{i}" for i in range(8)]

    outcomes = queue_behind_a_held_turn(database, signatures)

    assert outcomes == ["committed"] * 9
    assert commits[0] == 1  # one transaction, one sync, for nine requests
    path = Path(str(database.engine.url.database))
    assert committed_signatures(path) == {"v0=first", *signatures}


def test_a_group_older_than_its_age_limit_is_committed_before_the_next_request_joins(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old group is not kept open: the requests that joined it early must not wait on and on."""
    monkeypatch.setattr(GroupCommit, "MAX_GROUP_AGE_S", 0.0)
    commits = count_commits(database)

    outcomes = queue_behind_a_held_turn(database, ["v0=a", "v0=b", "v0=c"])

    assert outcomes == ["committed"] * 4
    assert commits[0] == 4


def test_a_failing_member_rolls_back_alone(database: Database) -> None:
    signatures = ["v0=a", "v0=fails", "v0=b"]

    outcomes = queue_behind_a_held_turn(database, signatures, fail="v0=fails")

    assert outcomes[0] == outcomes[1] == outcomes[3] == "committed"
    assert isinstance(outcomes[2], RuntimeError)
    path = Path(str(database.engine.url.database))
    assert committed_signatures(path) == {"v0=first", "v0=a", "v0=b"}


def test_a_failed_group_commit_fails_every_member_and_stores_nothing(database: Database) -> None:
    def disk_full(_conn: Any) -> None:
        raise OperationalError("COMMIT", None, Exception("database or disk is full"))

    event.listen(database.engine, "commit", disk_full)
    outcomes = queue_behind_a_held_turn(database, ["v0=a", "v0=b"])
    event.remove(database.engine, "commit", disk_full)

    assert all(isinstance(outcome, OperationalError) for outcome in outcomes), outcomes
    path = Path(str(database.engine.url.database))
    assert committed_signatures(path) == set()
    with database.session() as session:  # the writer recovers: a fresh connection for the next group
        session.add(SeenRequest(signature="v0=after", expires_at=EXPIRES))
    assert committed_signatures(path) == {"v0=after"}


def test_a_group_left_open_for_a_request_that_gave_up_is_committed_by_its_member(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last member leaves the group open because a request was queued; that request's wait ran
    out before its turn came. The member still returns with its work on disk."""
    monkeypatch.setattr(GroupCommit, "_end_unit", lambda self, batch: None)  # always "someone is queued"
    with database.request_session() as session:
        session.add(SeenRequest(signature="v0=alone", expires_at=EXPIRES))
    assert committed_signatures(Path(str(database.engine.url.database))) == {"v0=alone"}


def test_background_work_does_not_join_an_open_group(database: Database) -> None:
    """A job (no lock timeout) commits the requests' group first and runs in its own transaction."""
    commits = count_commits(database)
    group = group_of(database)
    with database.request_session() as session:
        session.add(SeenRequest(signature="v0=request", expires_at=EXPIRES))
        group._waiting += 1
    group._waiting -= 1
    with database.session() as session:
        session.add(SeenRequest(signature="v0=job", expires_at=EXPIRES))
    assert commits[0] == 2
    with database.session() as session:
        assert session.execute(select(func.count()).select_from(SeenRequest)).scalar_one() == 2


def test_nested_units_of_work_are_savepoints_of_the_outer_one(database: Database) -> None:
    path = Path(str(database.engine.url.database))
    with database.session() as outer:
        outer.add(SeenRequest(signature="v0=outer", expires_at=EXPIRES))

        def failing_inner_unit() -> None:
            with database.session() as inner:
                inner.add(SeenRequest(signature="v0=inner", expires_at=EXPIRES))
                inner.flush()
                raise RuntimeError("the inner unit fails")

        with pytest.raises(RuntimeError):
            failing_inner_unit()
        assert committed_signatures(path) == set()  # nothing is on disk before the outer unit ends
    assert committed_signatures(path) == {"v0=outer"}


def test_savepoints_sent_straight_to_sqlite_are_seen_and_fail_as_sqlalchemy_errors(
    database: Database,
) -> None:
    seen: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(database.engine, "before_cursor_execute", capture)
    with database.session() as session:
        keep = session.begin_nested()
        session.add(SeenRequest(signature="v0=kept", expires_at=EXPIRES))
        keep.commit()
        drop = session.begin_nested()
        session.add(SeenRequest(signature="v0=dropped", expires_at=EXPIRES))
        session.flush()
        drop.rollback()
    # The unit's own savepoint around the two of the block.
    verbs = [statement.split()[0] for statement in seen if "SAVEPOINT" in statement]
    assert verbs == ["SAVEPOINT", "SAVEPOINT", "RELEASE", "SAVEPOINT", "ROLLBACK", "RELEASE"]
    assert committed_signatures(Path(str(database.engine.url.database))) == {"v0=kept"}
    with (
        database.engine.connect() as connection,
        connection.begin(),
        pytest.raises(OperationalError, match="no such savepoint"),
    ):
        database.engine.dialect.do_release_savepoint(connection, "sa_savepoint_never_opened")


def test_a_request_waits_at_most_its_lock_timeout_for_its_turn(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage_db, "REQUEST_LOCK_TIMEOUT_MS", 50)
    with (
        turn_held_by_background_work(database),
        pytest.raises(OperationalError, match="locked"),
        database.request_session(),
    ):
        pass


# -- requests on the writer thread (GroupCommit.run, Database.run_request) ---------------------------


def remember(signature: str) -> Any:
    def work(session: Any) -> str:
        session.add(SeenRequest(signature=signature, expires_at=EXPIRES))
        session.flush()
        return signature

    return work


def test_requests_queued_for_the_writer_share_one_commit_and_return_after_it(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(GroupCommit, "MAX_GROUP_AGE_S", 60.0)
    path = Path(str(database.engine.url.database))
    commits = count_commits(database)
    holding, release = threading.Event(), threading.Event()
    outcomes: dict[str, Any] = {}

    def hold(session: Any) -> None:  # the first request holds the writer until the others queued
        holding.set()
        release.wait(10)

    def request(signature: str) -> None:
        try:
            database.run_request(remember(signature))
            outcomes[signature] = "committed" if signature in committed_signatures(path) else "not on disk"
        except Exception as error:
            outcomes[signature] = error

    first = threading.Thread(target=database.run_request, args=(hold,))
    first.start()
    assert holding.wait(10)
    signatures = [f"v0=writer{i}" for i in range(6)]
    threads = [threading.Thread(target=request, args=(s,)) for s in signatures]
    for thread in threads:
        thread.start()
    while group_of(database)._queue.qsize() < len(signatures):
        threading.Event().wait(0.001)
    release.set()
    for thread in [first, *threads]:
        thread.join(10)

    assert outcomes == dict.fromkeys(signatures, "committed")
    assert commits[0] == 1  # the holder and the six queued behind it: one transaction, one sync


def test_a_request_failing_on_the_writer_gets_its_own_error_and_the_others_commit(database: Database) -> None:
    def refused(session: Any) -> None:
        session.add(SeenRequest(signature="v0=refused", expires_at=EXPIRES))
        session.flush()
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        database.run_request(refused)
    assert database.run_request(remember("v0=kept")) == "v0=kept"
    path = Path(str(database.engine.url.database))
    assert committed_signatures(path) == {"v0=kept"}


def test_a_request_not_started_within_its_wait_is_abandoned_and_never_runs(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack gives up after 3 s: a request still queued when its wait runs out is answered "busy" and
    is not carried out later, when the writer gets to it."""
    monkeypatch.setattr(storage_db, "REQUEST_LOCK_TIMEOUT_MS", 50)
    with turn_held_by_background_work(database), pytest.raises(OperationalError, match="locked"):
        database.run_request(remember("v0=late"))
    assert database.run_request(remember("v0=next")) == "v0=next"  # the writer goes on
    path = Path(str(database.engine.url.database))
    assert committed_signatures(path) == {"v0=next"}


def test_a_request_inside_a_unit_of_its_own_thread_runs_nested(database: Database) -> None:
    path = Path(str(database.engine.url.database))
    with database.session() as outer:
        outer.add(SeenRequest(signature="v0=outer", expires_at=EXPIRES))
        assert database.run_request(remember("v0=inner")) == "v0=inner"
    assert committed_signatures(path) == {"v0=outer", "v0=inner"}


def test_a_unit_failing_in_its_flush_leaves_nothing_of_itself_in_the_group(database: Database) -> None:
    """A plain-statement write, then a flush that fails (a duplicate key): neither is committed, and
    the unit after it in the same group commits as usual."""
    path = Path(str(database.engine.url.database))
    database.run_request(remember("v0=taken"))

    def half_then_duplicate(session: Any) -> None:
        sql = Statements(session)
        sql.execute(
            "INSERT INTO seen_request (signature, expires_at) VALUES (?, ?)", ("v0=half", sql.when(EXPIRES))
        )
        session.add(SeenRequest(signature="v0=taken", expires_at=EXPIRES))
        session.flush()

    with pytest.raises(IntegrityError):
        database.run_request(half_then_duplicate)
    assert database.run_request(remember("v0=after")) == "v0=after"
    assert committed_signatures(path) == {"v0=taken", "v0=after"}


def test_a_unit_that_rolls_back_its_session_undoes_only_itself(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`session.rollback()` inside a unit of a group: that unit's work so far is undone, the unit
    goes on, and the group's other units stand."""
    monkeypatch.setattr(GroupCommit, "MAX_GROUP_AGE_S", 60.0)
    path = Path(str(database.engine.url.database))
    commits = count_commits(database)

    outcomes = queue_behind_a_held_turn(
        database, ["v0=a", "v0=rolls-back", "v0=b"], roll_back="v0=rolls-back"
    )

    assert outcomes == ["committed", "committed", "not on disk", "committed"]
    assert commits[0] == 1
    assert committed_signatures(path) == {"v0=first", "v0=a", "v0=rolls-back-kept", "v0=b"}


# -- the turn among processes (the lock file beside the database) -----------------------------------


@contextmanager
def turn_held_by_another_process(database: Database) -> Iterator[None]:
    """Another process's writer holds the turn for the duration of the block: its own open lock
    file (flock conflicts between open files, as between processes)."""
    lock_path = storage_db._sqlite_lock_path(database.engine)
    assert lock_path is not None
    with open(lock_path, "a+b") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(other.fileno(), fcntl.LOCK_UN)


def test_the_writer_waits_for_another_process_in_the_kernel_and_runs_the_moment_it_is_free(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No polling: a sleep in the writer's wait would cost CPU and the GIL to every waiting process
    (two processes used 40 % more CPU per request than one)."""

    def no_polling(_seconds: float) -> None:
        raise AssertionError("the writer polled for the turn")

    path = Path(str(database.engine.url.database))
    outcome: list[Any] = []
    with turn_held_by_another_process(database):
        monkeypatch.setattr(storage_db.time, "sleep", no_polling)
        request = threading.Thread(target=lambda: outcome.append(database.run_request(remember("v0=after"))))
        request.start()
        while group_of(database)._queue.qsize():  # the writer took it and waits for the turn
            threading.Event().wait(0.001)
        assert committed_signatures(path) == set()
    request.join(10)
    assert outcome == ["v0=after"]
    assert committed_signatures(path) == {"v0=after"}


def test_a_request_whose_wait_ends_while_another_process_writes_is_busy_and_never_runs(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer may wait for the other process as long as it takes, but it starts a request only
    once it has the turn: one whose own wait ran out meanwhile was answered busy and is skipped."""
    monkeypatch.setattr(storage_db, "REQUEST_LOCK_TIMEOUT_MS", 50)
    with (
        turn_held_by_another_process(database),
        pytest.raises(OperationalError, match="locked"),
    ):
        database.run_request(remember("v0=late"))
    assert database.run_request(remember("v0=next")) == "v0=next"
    path = Path(str(database.engine.url.database))
    assert committed_signatures(path) == {"v0=next"}


def test_background_work_still_gives_up_on_another_process_at_its_deadline(
    database: Database,
) -> None:
    with (
        turn_held_by_another_process(database),
        pytest.raises(OperationalError, match="another process"),
        database.session(lock_timeout_ms=50),
    ):
        pass
    with database.session() as session:  # and the turn is taken again once it is free
        session.add(SeenRequest(signature="v0=background", expires_at=EXPIRES))
    assert committed_signatures(Path(str(database.engine.url.database))) == {"v0=background"}
