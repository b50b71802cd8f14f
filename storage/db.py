"""One engine and session factory for the whole process, and the schema migrations."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.pool import QueuePool, StaticPool
from sqlmodel import Session

from storage import gates, lean
from storage import totals as _totals  # noqa: F401  (its listener keeps the running totals)
from storage.held import HeldConnections

log = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 30_000
# A request must be answered inside Slack's 3 s: it waits at most this long for a lock, then fails
# (the error handler answers "busy, nothing recorded, try again"). Background work waits longer.
REQUEST_LOCK_TIMEOUT_MS = 1_500
STATEMENT_TIMEOUT_MARGIN_MS = 1_000  # PostgreSQL: a statement may run this much longer than a lock wait
LOCK_TIMEOUT_OPTION = "liaison_lock_timeout_ms"
# A transaction whose loss in a power cut costs nothing (the replay guard's note of a signature) may
# skip its own sync on PostgreSQL: the next durable commit syncs it along (the WAL is in order).
DURABLE_OPTION = "liaison_durable"
# A read-only transaction on one snapshot (Database.read_session): on SQLite it does not take the
# writer's turn.
READ_ONLY_OPTION = "liaison_read_only"
# Connections kept open per process: one per thread that touches the database at once (HTTP and
# listener threads, outbox delivery, scheduler); more are opened, and closed again, past that.
SQLITE_POOL_SIZE = 20
SQLITE_POOL_OVERFLOW = 40
# PostgreSQL: up to PG_HELD_CONNECTIONS of them are held by request threads (storage.held), the
# rest serve everything else.
PG_POOL_SIZE = 10
PG_POOL_OVERFLOW = 10
PG_HELD_CONNECTIONS = 8


def normalize_database_url(url: str) -> str:
    """Accept the usual `postgresql://user:pass@host:port/db` form and use psycopg 3 for it."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def create_db_engine(url: str) -> Engine:
    url = normalize_database_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        return _create_sqlite_engine(url)
    # prepare_threshold=None: statements on the hot path are prepared by storage.lean, and psycopg's
    # own preparing would send DEALLOCATE ALL (dropping those too) after every rollback.
    engine = create_engine(
        url, pool_size=PG_POOL_SIZE, max_overflow=PG_POOL_OVERFLOW, connect_args={"prepare_threshold": None}
    )

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        # SQLAlchemy's pool_pre_ping would cost a round trip on every transaction. A connection
        # used moments ago is alive (if the server went away since, that transaction fails and
        # the pool is renewed); one idle for a while is checked before it is handed out.
        if time.monotonic() - record.info.get(_LAST_USED, 0.0) < PG_PING_AFTER_IDLE_S:
            return
        try:
            _ping(dbapi_connection)
        except Exception as error:
            raise DisconnectionError("the pooled connection is gone") from error  # the pool reconnects

    @event.listens_for(engine, "connect")
    def _own_begin(dbapi_connection: Any, _record: Any) -> None:
        # Liaison sends BEGIN itself, with the transaction's first statement (storage.lean): the
        # driver's own would cost a round trip of its own in every transaction.
        dbapi_connection.autocommit = True

    @event.listens_for(engine, "checkin")
    def _remember_use(_dbapi_connection: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()
        if lean.drop_queue(record.info):
            record.info.pop(_PG_TIMEOUTS, None)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        calls: list[str] = []
        # A Slack request's lock and statement timeouts are set on the connection (not SET LOCAL)
        # and kept while the pooled connection serves requests: most transactions begin without
        # setting them. Background work resets them to the server's defaults.
        wanted = options.get(LOCK_TIMEOUT_OPTION)
        info = conn.connection.info
        if info.get(_PG_TIMEOUTS) != wanted:
            for name, value in _pg_timeouts(wanted):
                calls.append(f"set_config('{name}', {value}, false)")
            info[_PG_TIMEOUTS] = wanted
        if not options.get(DURABLE_OPTION, True):
            calls.append("set_config('synchronous_commit', 'off', true)")  # this transaction only
        # A report reads one snapshot (REPEATABLE READ) and cannot write by mistake (READ ONLY).
        begin = (
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" if options.get(READ_ONLY_OPTION) else "BEGIN"
        )
        lean.open_transaction(info, [begin, f"SELECT {', '.join(calls)}"] if calls else [begin])

    # What storage.lean queued (the opening, `Statements.later`) goes out before any other statement
    # and, when it can, with the COMMIT in one round trip; a rollback drops it.
    @event.listens_for(engine, "before_execute")
    def _send_queue_first(conn: Connection, *_args: Any) -> None:
        lean.send_queued(conn)

    @event.listens_for(engine, "commit")
    def _send_queue_with_commit(conn: Connection) -> None:
        info = conn.connection.info
        if lean.ran_nothing(info):
            # Nothing reached the server: no transaction to commit, and its settings never ran.
            lean.drop_queue(info)
            info.pop(_PG_TIMEOUTS, None)
            return
        lean.send_queued(conn, commit=True)  # the driver's own COMMIT then finds nothing to do

    @event.listens_for(engine, "rollback")
    def _on_rollback(conn: Any) -> None:
        # A rolled-back transaction takes its SETs with it: the connection is back to what it was
        # before, which is no longer known here.
        info = conn.connection.info
        info.pop(_PG_TIMEOUTS, None)
        lean.drop_queue(info)

    return engine


def _ping(dbapi_connection: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SELECT 1")


_PG_TIMEOUTS = "liaison.timeouts"
_SQLITE_BUSY_TIMEOUT = "liaison.busy_timeout"
_SQLITE_QUERY_ONLY = "liaison.query_only"
_LAST_USED = "liaison.last_used"
PG_PING_AFTER_IDLE_S = 1.0  # a PostgreSQL connection idle this long is pinged before use


def _pg_timeouts(lock_timeout_ms: int | None) -> list[tuple[str, str]]:
    """set_config values (SQL expressions) for a request's timeouts, or the server's defaults."""
    if lock_timeout_ms is None:
        return [
            ("lock_timeout", "(SELECT reset_val FROM pg_settings WHERE name = 'lock_timeout')"),
            ("statement_timeout", "(SELECT reset_val FROM pg_settings WHERE name = 'statement_timeout')"),
        ]
    statement_ms = int(lock_timeout_ms) + STATEMENT_TIMEOUT_MARGIN_MS
    return [("lock_timeout", f"'{int(lock_timeout_ms)}'"), ("statement_timeout", f"'{statement_ms}'")]


def _create_sqlite_engine(url: str) -> Engine:
    in_memory = make_url(url).database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if in_memory:
        # One shared connection for an in-memory database (else each thread sees its own empty one).
        kwargs["poolclass"] = StaticPool
    else:
        # Long-lived connections, PRAGMAs set once each. Opening a connection per unit of work cost
        # ~8 ms: closing the last connection to a WAL database checkpoints and removes the WAL, so
        # the next commit recreated it (see bench/RESULTS.md). Several processes may still share the
        # file: WAL and BEGIN IMMEDIATE serialize their writers.
        kwargs.update(poolclass=QueuePool, pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_OVERFLOW)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode = WAL")
            # Durable: in WAL mode FULL syncs the WAL at every commit, so an acknowledged command
            # survives a power loss (NORMAL would only survive a crash of the process). Group
            # commit (GroupCommit) shares each sync among the units of work committed together.
            cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    _savepoints_on_the_driver(engine)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        info = conn.connection.info
        # The busy timeout is per connection (and the in-memory one is shared): set when it changes.
        timeout = int(options.get(LOCK_TIMEOUT_OPTION, SQLITE_BUSY_TIMEOUT_MS))
        if info.get(_SQLITE_BUSY_TIMEOUT) != timeout:
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {timeout}")
            info[_SQLITE_BUSY_TIMEOUT] = timeout
        read_only = bool(options.get(READ_ONLY_OPTION, False))
        if info.get(_SQLITE_QUERY_ONLY, False) != read_only:
            conn.exec_driver_sql(f"PRAGMA query_only = {int(read_only)}")
            info[_SQLITE_QUERY_ONLY] = read_only
        if read_only:
            # A deferred transaction only reads: in WAL mode it sees one snapshot, and neither
            # waits for the writer nor makes it wait.
            _on_the_driver(conn, "BEGIN")
            return
        # Take the write lock up front: a check-then-write (a departure never below zero) cannot race.
        _on_the_driver(conn, "BEGIN IMMEDIATE")

    return engine


def _on_the_driver(connection: Connection, sql: str) -> None:
    """A statement with no parameters and no result straight on sqlite3: no compiling, no result
    object. Statement capture sees it, and it fails with SQLAlchemy's own error types (a locked
    database is an OperationalError, as the busy handling and `/healthz` expect)."""
    lean.announce(connection, sql, ())
    driver_error: type[Exception] = connection.dialect.loaded_dbapi.Error
    try:
        connection.connection.driver_connection.execute(sql)  # type: ignore[union-attr]
    except driver_error as error:
        raise DBAPIError.instance(sql, (), error, driver_error) from error


def _savepoints_on_the_driver(engine: Engine) -> None:
    """SAVEPOINT, RELEASE and ROLLBACK TO go straight to sqlite3 (`_on_the_driver`).

    Every unit of work of the group commit (GroupCommit) runs in a savepoint. SQLAlchemy compiles
    each savepoint statement anew (the name is new every time, so no cache applies): one command's
    SAVEPOINT and RELEASE cost ~0.2 ms of the writer's ~0.8 ms (bench/RESULTS.md); sqlite3 runs them
    in microseconds."""

    def sender(verb: str) -> Callable[[Connection, str], None]:
        def send(connection: Connection, name: str) -> None:
            _on_the_driver(connection, f'{verb} "{name}"')  # names are SQLAlchemy's own (sa_savepoint_N)

        return send

    dialect = engine.dialect
    dialect.do_savepoint = sender("SAVEPOINT")  # type: ignore[method-assign,assignment]
    dialect.do_release_savepoint = sender("RELEASE SAVEPOINT")  # type: ignore[method-assign,assignment]
    dialect.do_rollback_to_savepoint = sender("ROLLBACK TO SAVEPOINT")  # type: ignore[method-assign,assignment]


class Database:
    """The engine plus a session factory; every unit of work is one `with db.session() as s:` block."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._group = GroupCommit(engine) if engine.dialect.name == "sqlite" else None
        self._binds: dict[tuple[int | None, bool], Engine] = {}
        self._read_bind = engine.execution_options(**{READ_ONLY_OPTION: True})
        self._shared_connection = isinstance(engine.pool, StaticPool)  # SQLite in memory
        self._held = (
            HeldConnections(
                engine, limit=PG_HELD_CONNECTIONS, ping=_ping, idle_after=lambda: PG_PING_AFTER_IDLE_S
            )
            if engine.dialect.name == "postgresql"
            else None
        )

    @classmethod
    def from_url(cls, url: str) -> Database:
        return cls(create_db_engine(url))

    def session(
        self, *, lock_timeout_ms: int | None = None, durable: bool = True
    ) -> AbstractContextManager[Session]:
        """A transaction: committed when the block ends normally, rolled back on any exception.

        With `lock_timeout_ms` it waits at most that long for a lock (its turn to write on SQLite, a
        PostgreSQL row or advisory lock) and raises OperationalError instead of waiting on.
        `durable=False`: its commit need not wait for the disk (see DURABLE_OPTION; on SQLite every
        commit is durable, its cost shared by a group of units of work).
        """
        if self._group is not None:
            return self._group.unit(lock_timeout_ms)
        return self._pooled_session(lock_timeout_ms, durable)

    def url_for_another_process(self) -> str | None:
        """The URL another process opens this database with (password included: never log it);
        None for SQLite in memory, which only this process can see."""
        if self._shared_connection:
            return None
        return self.engine.url.render_as_string(hide_password=False)

    @property
    def one_writer(self) -> bool:
        """Whether writers take turns (SQLite): a long transaction there delays every command."""
        return self._group is not None

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A read-only transaction on one consistent snapshot, for reports built from many queries
        (digests, exports). On SQLite it holds the writer's turn only for the instant its snapshot
        is taken (readers and the writer do not block each other in WAL mode), so however long a
        report takes to read, it never delays a command's acknowledgement. Writing in it fails
        (SQLite: query_only; PostgreSQL: a READ ONLY transaction, REPEATABLE READ for the snapshot).
        """
        if self._shared_connection:  # one connection for everything: it has to take its turn
            with self.session() as session:
                yield session
            return
        with _unit_of_work(self._read_bind) as session:
            if self._group is not None:
                # Taken inside a turn of the writer's: every write whose turn began before this
                # moment is in the snapshot (a command times its rows inside its turn, so one
                # timed before a report's "now" cannot commit after the report has read).
                with self._group.unit(None):
                    session.connection().exec_driver_sql("SELECT count(*) FROM sqlite_master")
            yield session

    def _bind(self, lock_timeout_ms: int | None, durable: bool) -> Engine:
        """The engine with a transaction's options (kept: building one costs ~40 µs per request)."""
        key = (lock_timeout_ms, durable)
        bind = self._binds.get(key)
        if bind is None:
            options: dict[str, Any] = {}
            if lock_timeout_ms is not None:
                options[LOCK_TIMEOUT_OPTION] = lock_timeout_ms
            if not durable:
                options[DURABLE_OPTION] = False
            bind = self.engine.execution_options(**options) if options else self.engine
            self._binds[key] = bind
        return bind

    def _pooled_session(self, lock_timeout_ms: int | None, durable: bool) -> AbstractContextManager[Session]:
        return _unit_of_work(self._bind(lock_timeout_ms, durable))

    @contextmanager
    def _held_session(self, held: HeldConnections, durable: bool) -> Iterator[Session]:
        """A request's session on its thread's own connection (PostgreSQL, storage.held), or on a
        pooled one when the thread has none to spare."""
        connection = held.take(_REQUEST_OPTIONS[durable])
        if connection is None:
            with self._pooled_session(REQUEST_LOCK_TIMEOUT_MS, durable) as session:
                yield session
            return
        failed = True
        try:
            with _unit_of_work(connection) as session:
                yield session
            failed = False
        finally:
            held.give_back(connection, failed=failed)

    def run_request(self, work: Callable[[Session], T], *, optimistic: bool = False) -> T:
        """`work` in the transaction of a Slack request, like `with request_session() as s: work(s)`.
        On SQLite it runs on the process's writer thread, back to back with the other requests of
        its group (GroupCommit.run); its result (or exception) comes back once the group committed.
        `optimistic`: on PostgreSQL its first attempt may leave its checks to the server
        (storage.gates); if the server stops it, it runs again, step by step. So `work` may run
        twice: everything it does must be in the transaction (or harmless to do again, like a read
        from Slack), and it must let database errors through (not take one for an answer)."""
        if self._group is not None:
            return self._group.run(work, REQUEST_LOCK_TIMEOUT_MS)
        if not optimistic:
            with self.request_session() as session:
                return work(session)
        try:
            with self.request_session() as session:
                gates.allow(session)  # checks on the server, one round trip (storage.gates)
                return work(session)
        except DBAPIError as error:
            if not gates.reconsidered(error):
                raise
        with self.request_session() as session:  # again, step by step: nothing of the first stands
            return work(session)

    def request_session(self, *, durable: bool = True) -> AbstractContextManager[Session]:
        """The transaction of a Slack request: it fails fast rather than outlast Slack's 3 seconds."""
        if self._held is not None:
            return self._held_session(self._held, durable)
        return self.session(lock_timeout_ms=REQUEST_LOCK_TIMEOUT_MS, durable=durable)

    def migrate(self) -> None:
        upgrade_to_head(self.engine)

    def dispose(self) -> None:
        if self._group is not None:
            self._group.close()
        if self._held is not None:
            self._held.close()
        self.engine.dispose()


# A held connection's execution options for a request (both set: they are changed in place).
_REQUEST_OPTIONS = {
    durable: {LOCK_TIMEOUT_OPTION: REQUEST_LOCK_TIMEOUT_MS, DURABLE_OPTION: durable}
    for durable in (True, False)
}


@contextmanager
def _unit_of_work(bind: Engine | Connection) -> Iterator[Session]:
    """A session on `bind`: committed when the block ends normally, rolled back on any exception."""
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


class _Batch:
    """Units of work sharing one SQLite transaction; each waits for the one commit of them all."""

    __slots__ = ("done", "error", "opened_at", "size")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.opened_at = time.monotonic()
        self.size = 0


class _GroupSession(Session):
    """The session of a group of units of work (GroupCommit): each unit runs in a savepoint,
    `unit`, and `rollback()` undoes that unit only — as it did when each unit had a session of its
    own — then lets it go on in a fresh savepoint. The group's transaction is never touched."""

    unit: Any = None  # the current unit's savepoint (a SessionTransaction)

    def rollback(self) -> None:
        if self.unit is None:
            super().rollback()
            return
        if self.unit.is_active:
            self.unit.rollback()
        self.unit = self.begin_nested()


class _Queued:
    """A request's unit of work waiting for the writer thread (GroupCommit.run)."""

    __slots__ = ("deadline", "done", "error", "result", "state", "state_lock", "work")

    def __init__(self, work: Callable[[Session], Any], deadline: float) -> None:
        self.work = work
        self.deadline = deadline
        self.done = threading.Event()
        self.state_lock = threading.Lock()
        self.state = "queued"  # → "running" → "done", or → "abandoned" (its request gave up)
        self.result: Any = None
        self.error: BaseException | None = None

    def start(self) -> bool:
        """On the writer thread: whether to run it (not abandoned, not past its deadline)."""
        with self.state_lock:
            if self.state == "abandoned":
                return False
            if time.monotonic() > self.deadline:
                self.error = _busy("waiting for the SQLite writer in this process")
                self.state = "done"
                self.done.set()
                return False
            self.state = "running"
            return True

    def waiting(self) -> bool:
        """Still queued: neither abandoned by its request nor settled."""
        return self.state == "queued"

    def fail(self, error: BaseException) -> None:
        """On the writer thread, before it started: settle it with `error` (unless abandoned)."""
        with self.state_lock:
            if self.state != "queued":
                return
            self.error = error
            self.state = "done"
            self.done.set()

    def abandon(self) -> bool:
        """On the request's thread, its wait over: True if the writer had not started it."""
        with self.state_lock:
            if self.state == "queued":
                self.state = "abandoned"
                return True
            return False

    def finish(self, group_error: BaseException | None) -> None:
        if self.error is None and group_error is not None:
            self.error = group_error
        self.state = "done"
        self.done.set()


class GroupCommit:
    """SQLite writes through one connection per process, and commits for a group of units of work.

    SQLite has one writer, and every transaction here takes the write lock (BEGIN IMMEDIATE); a
    durable commit syncs the WAL (~0.2-0.3 ms, more on a shared disk). Units of work therefore take
    turns on a lock (threads of this process) and on an flock of a sidecar file (processes sharing
    the file) — waiting in SQLite's own busy handler means sleeping in steps of up to 100 ms, which
    made p99 over 2 s under 10 concurrent commands (bench/RESULTS.md). A unit runs in a savepoint of
    the open transaction, so a failing unit rolls back alone. When it ends and other requests are
    queued, the transaction is left open for them; the last one commits for the group, and every
    member returns only once that commit is on disk. So a Slack command is still acknowledged only
    after its own data is durable, and one sync serves many commands.

    Slack requests come through `run`: they queue for one writer thread, which takes the turn once
    and runs the queued requests back to back (no hand-off of the turn between two of them). Units
    opened with `unit` (a `with db.session()` block) take the turn themselves; those of a Slack
    request (with a lock timeout) join an open group for up to MAX_GROUP_AGE_S, while background work
    (the outbox, the scheduler, exports) commits any open group first and runs in a transaction of
    its own, so a long job never delays a command's acknowledgement.
    """

    MAX_GROUP = 64
    MAX_GROUP_AGE_S = 0.005
    RESCUE_AFTER_S = 0.05  # a member whose group is still open after this commits it itself

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._owner: int | None = None  # the thread holding the turn (nested units reuse it)
        self._waiting = 0
        self._counter = threading.Lock()
        lock_path = _sqlite_lock_path(engine)
        self._file = open(lock_path, "a+b") if lock_path else None  # noqa: SIM115  (kept open)
        self._connection: Connection | None = None
        self._transaction: Any = None
        self._batch: _Batch | None = None
        self._queue: queue.SimpleQueue[_Queued | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._group_session: _GroupSession | None = None
        self._depth = 0  # units of work open on the group's session (nested ones are savepoints)

    @contextmanager
    def unit(self, lock_timeout_ms: int | None) -> Iterator[Session]:
        if self._owner == threading.get_ident():  # nested in this thread's unit: a savepoint of it
            assert self._connection is not None
            with self._session() as session:
                yield session
            return
        timeout_s = (SQLITE_BUSY_TIMEOUT_MS if lock_timeout_ms is None else lock_timeout_ms) / 1000
        deadline = time.monotonic() + timeout_s
        self._take_turn(timeout_s)
        failed = False
        try:
            batch = self._join(lock_timeout_ms, deadline)
            assert self._connection is not None
            try:
                with self._session() as session:
                    yield session
            except BaseException:
                failed = True
                raise
            finally:
                self._end_unit(batch)
        finally:
            self._owner = None
            self._lock.release()
        if not failed:
            self._wait_committed(batch)

    def run(self, work: Callable[[Session], T], lock_timeout_ms: int) -> T:
        """`work(session)` as a unit of work on the writer thread; its result once committed.

        Requests queue here rather than on the lock: the writer thread takes the turn once and runs
        the queued units back to back, each in its savepoint, then commits them together. No thread
        hand-off between two units of a group: that hand-off (waking the next waiter, which then
        waits for the interpreter lock) was a third of the writer's time under load."""
        if self._owner == threading.get_ident():  # already in a unit of this thread: nested
            assert self._connection is not None
            with self._session() as session:
                return work(session)
        timeout_s = lock_timeout_ms / 1000
        item = _Queued(work, time.monotonic() + timeout_s)
        self._start_writer()
        self._queue.put(item)
        if not item.done.wait(timeout_s) and item.abandon():
            raise _busy("waiting for the SQLite writer in this process")
        item.done.wait()  # started in time: its outcome comes with its group's commit
        # Taken out of the item: an exception's frames (the writer's among them) refer to the item,
        # and a cycle would leave the whole request for the garbage collector (tests/test_garbage.py).
        error, item.error = item.error, None
        result: T = item.result
        item.result = None
        if error is not None:
            try:
                raise error
            finally:
                del error  # this frame, in the traceback from here on, must not hold it either
        return result

    def _start_writer(self) -> None:
        if self._writer is not None:
            return
        with self._counter:
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_loop, name="liaison-sqlite-writer", daemon=True
                )
                self._writer.start()

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            if first.waiting():
                self._write_group(first)

    def _write_group(self, first: _Queued) -> None:
        """Take the turn, run `first` and whatever queued meanwhile (within the group's limits),
        commit, then give each its outcome.

        The writer waits for another process's turn in the kernel (a blocking flock: woken the
        moment it is released, no polling) and starts a request only once it holds the turn; a
        request still queued when its own wait is over has been answered "busy" meanwhile and is
        skipped. Polling every 0.2 ms instead cost two processes 40 % more CPU per request than
        one (bench/RESULTS.md)."""
        ran: list[_Queued] = []
        batch: _Batch | None = None
        try:
            self._take_turn(max(first.deadline - time.monotonic(), 0.001))
        except OperationalError as error:
            first.fail(error)
            return
        try:
            batch = self._join(REQUEST_LOCK_TIMEOUT_MS, first.deadline, wait_for_others=True)
            item: _Queued | None = first if first.start() else self._next_queued(batch)
            while item is not None:
                ran.append(item)
                assert self._connection is not None
                try:
                    with self._session() as session:
                        item.result = item.work(session)
                except BaseException as error:
                    item.error = error
                item = self._next_queued(batch)
            self._commit()
        except BaseException as error:
            if not ran:
                first.fail(error)
            for member in ran:
                member.error = member.error or error
        finally:
            self._owner = None
            self._lock.release()
        group_error = batch.error if batch is not None else None
        for member in ran:
            member.finish(group_error)

    def _next_queued(self, batch: _Batch) -> _Queued | None:
        while batch.size < self.MAX_GROUP and time.monotonic() - batch.opened_at < self.MAX_GROUP_AGE_S:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return None
            if item is None:  # closing: let the loop see it after this group
                self._queue.put(None)
                return None
            if item.start():
                batch.size += 1
                return item
        return None

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """A unit of work in the open group: the group's session, in a savepoint of its own.

        One session serves the whole group (a new session joining the connection for each unit cost
        ~0.1 ms, a quarter of a command's turn); each unit starts with its notes cleared and ends
        with its objects detached, as if its session had been closed."""
        session = self._group_session
        assert session is not None
        outermost = self._depth == 0
        if outermost:
            session.info.clear()  # per-unit notes: board changed, messages enqueued, …
        self._depth += 1
        outer_unit = session.unit
        session.unit = session.begin_nested()
        try:
            yield session
        except BaseException:
            if session.unit.is_active:
                session.unit.rollback()  # this unit alone: the group's other work stands
            raise
        else:
            session.unit.commit()  # releases the unit's savepoint
        finally:
            session.unit = outer_unit
            self._depth -= 1
            if outermost:
                session.expunge_all()

    def _take_turn(self, timeout_s: float) -> None:
        with self._counter:
            self._waiting += 1
        try:
            if not self._lock.acquire(timeout=timeout_s):
                raise _busy("waiting for the SQLite writer in this process")
        finally:
            with self._counter:
                self._waiting -= 1
        self._owner = threading.get_ident()

    def _join(self, lock_timeout_ms: int | None, deadline: float, *, wait_for_others: bool = False) -> _Batch:
        """The open group this unit joins, or a new one (holding the turn). `wait_for_others`: wait
        for another process's turn however long it lasts (the writer thread: its requests keep
        their own deadlines), else until `deadline`."""
        batch = self._batch
        if batch is not None:
            request = lock_timeout_ms is not None
            if (
                request
                and batch.size < self.MAX_GROUP
                and time.monotonic() - batch.opened_at < self.MAX_GROUP_AGE_S
            ):
                batch.size += 1
                return batch
            self._commit()
        self._begin(lock_timeout_ms, None if wait_for_others else deadline)
        assert self._batch is not None
        self._batch.size = 1
        return self._batch

    def _begin(self, lock_timeout_ms: int | None, deadline: float | None) -> None:
        if self._file is not None:
            self._lock_file(deadline)
        try:
            if self._connection is None:
                self._connection = self._engine.connect()
            timeout = SQLITE_BUSY_TIMEOUT_MS if lock_timeout_ms is None else lock_timeout_ms
            self._connection.execution_options(**{LOCK_TIMEOUT_OPTION: timeout})
            self._transaction = self._connection.begin()  # BEGIN IMMEDIATE (see _on_begin)
        except BaseException:
            self._reset()
            raise
        # Joins the group's transaction: it never commits it, and rolls back only savepoints.
        self._group_session = _GroupSession(
            self._connection, expire_on_commit=False, join_transaction_mode="rollback_only"
        )
        self._batch = _Batch()

    def _end_unit(self, batch: _Batch) -> None:
        """Leave the group open for a queued request, or commit it now."""
        if self._batch is not batch:
            return  # already committed (a nested unit's failure cannot get here; defensive)
        if (self._waiting or not self._queue.empty()) and batch.size < self.MAX_GROUP:
            return
        self._commit()

    def _commit(self) -> None:
        batch, transaction = self._batch, self._transaction
        self._batch, self._transaction = None, None
        if batch is None:
            return
        self._close_group_session()
        try:
            transaction.commit()
        except BaseException as error:
            batch.error = error
            self._reset()
        finally:
            self._unlock_file()
            batch.done.set()

    def _wait_committed(self, batch: _Batch) -> None:
        while not batch.done.wait(self.RESCUE_AFTER_S):
            # The queued request this group was left open for gave up waiting: commit it here.
            with self._lock:
                self._owner = threading.get_ident()
                try:
                    if self._batch is batch:
                        self._commit()
                finally:
                    self._owner = None
        if batch.error is not None:
            raise batch.error

    def _close_group_session(self) -> None:
        session, self._group_session = self._group_session, None
        if session is not None:
            session.close()  # leaves the connection's transaction as it is (rollback_only)

    def _reset(self) -> None:
        """After a failed BEGIN or COMMIT: a fresh connection for the next group."""
        self._close_group_session()
        connection, self._connection, self._transaction = self._connection, None, None
        if connection is not None:
            try:
                connection.invalidate()
                connection.close()
            except Exception as error:  # the connection is being thrown away anyway
                log.debug("closing a failed SQLite writer connection: %s", error)
        self._unlock_file()

    def _lock_file(self, deadline: float | None) -> None:
        """The turn among processes; `deadline` None: wait in the kernel until it is free."""
        assert self._file is not None
        if deadline is None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)  # releases the GIL while it waits
            return
        while True:
            try:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _busy("waiting for the SQLite writer in another process") from None
                time.sleep(0.0002)  # another Liaison process writes; its turn lasts about a millisecond

    def _unlock_file(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)

    def close(self) -> None:
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(10)
            if self._writer.is_alive():  # still waiting for another process's turn: leave it be
                log.warning("closing while the SQLite writer waits for another process's turn")
                return
            self._writer = None
        with self._lock:
            if self._batch is not None:
                self._commit()
            if self._connection is not None:
                self._connection.close()
                self._connection = None
            if self._file is not None:
                self._file.close()
                self._file = None


def _sqlite_lock_path(engine: Engine) -> str | None:
    """The lock file beside an SQLite database file (None: PostgreSQL, or SQLite in memory)."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if database in (None, "", ":memory:") or "mode=memory" in str(engine.url):
        return None
    return f"{database}-liaison.lock"


def _busy(what: str) -> OperationalError:
    return OperationalError(what, None, Exception("database is locked"))


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for PostgreSQL advisory locks."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def serialize_on(session: Session, name: str) -> None:
    """Serialize transactions touching `name` (e.g. one country's ledger) until this one ends.

    SQLite already serializes writers (BEGIN IMMEDIATE); PostgreSQL takes a transaction advisory lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        # Sent with the statement that follows (storage.lean): the server takes the lock before it.
        lean.Statements(session).later("SELECT pg_advisory_xact_lock(?)", (lock_key(name),))


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade_to_head(engine: Engine) -> None:
    """Bring the schema to the newest migration. Processes starting together take turns: PostgreSQL
    through an advisory lock (migrations/env.py), an SQLite file through the writers' lock file, so
    the later ones find the schema up to date instead of creating it again."""
    lock_path = _sqlite_lock_path(engine)
    if lock_path is None:
        command.upgrade(alembic_config(engine), "head")
        return
    with open(lock_path, "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            command.upgrade(alembic_config(engine), "head")
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
