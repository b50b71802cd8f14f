"""One engine and session factory for the whole process, and the schema migrations."""

from __future__ import annotations

import fcntl
import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import QueuePool, StaticPool
from sqlmodel import Session

from storage import totals as _totals  # noqa: F401  (its listener keeps the running totals)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 30_000
# A request must be answered inside Slack's 3 s: it waits at most this long for a lock, then fails
# (the error handler answers "busy, nothing recorded, try again"). Background work waits longer.
REQUEST_LOCK_TIMEOUT_MS = 1_500
STATEMENT_TIMEOUT_MARGIN_MS = 1_000  # PostgreSQL: a statement may run this much longer than a lock wait
LOCK_TIMEOUT_OPTION = "liaison_lock_timeout_ms"
# A transaction whose loss in a power cut costs nothing (the replay guard's note of a signature) may
# skip its own sync: the next durable commit syncs it along (SQLite's WAL and PostgreSQL's are in order).
DURABLE_OPTION = "liaison_durable"
# Connections kept open per process: one per thread that touches the database at once (HTTP and
# listener threads, outbox delivery, scheduler); more are opened, and closed again, past that.
SQLITE_POOL_SIZE = 20
SQLITE_POOL_OVERFLOW = 40


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
    engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if not options.get(DURABLE_OPTION, True):
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        timeout = options.get(LOCK_TIMEOUT_OPTION)
        if timeout is not None:
            # SET LOCAL: only this transaction; the pooled connection keeps the server defaults.
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(timeout)}")
            conn.exec_driver_sql(
                f"SET LOCAL statement_timeout = {int(timeout) + STATEMENT_TIMEOUT_MARGIN_MS}"
            )

    return engine


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
            # survives a power loss (NORMAL would only survive a crash of the process). _on_begin
            # keeps it so for every transaction not opened with durable=False.
            cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # The busy timeout is per connection (and the in-memory one is shared): set it for each transaction.
        options = conn.get_execution_options()
        timeout = options.get(LOCK_TIMEOUT_OPTION, SQLITE_BUSY_TIMEOUT_MS)
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(timeout)}")
        if not in_memory:
            synchronous = "FULL" if options.get(DURABLE_OPTION, True) else "NORMAL"
            info = conn.connection.info
            if info.get("synchronous") != synchronous:  # kept per pooled connection: set on change only
                conn.exec_driver_sql(f"PRAGMA synchronous = {synchronous}")
                info["synchronous"] = synchronous
        # Take the write lock up front: a check-then-write (a departure never below zero) cannot race.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Database:
    """The engine plus a session factory; every unit of work is one `with db.session() as s:` block."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writers = _WriterQueue.for_engine(engine)

    @classmethod
    def from_url(cls, url: str) -> Database:
        return cls(create_db_engine(url))

    @contextmanager
    def session(self, *, lock_timeout_ms: int | None = None, durable: bool = True) -> Iterator[Session]:
        """A transaction: committed when the block ends normally, rolled back on any exception.

        With `lock_timeout_ms` it waits at most that long for a lock (its turn to write on SQLite, a
        PostgreSQL row or advisory lock) and raises OperationalError instead of waiting on.
        `durable=False`: its commit does not wait for the disk (see DURABLE_OPTION).
        """
        options: dict[str, Any] = {}
        if lock_timeout_ms is not None:
            options[LOCK_TIMEOUT_OPTION] = lock_timeout_ms
        if not durable:
            options[DURABLE_OPTION] = False
        bind = self.engine.execution_options(**options) if options else self.engine
        wait_ms = SQLITE_BUSY_TIMEOUT_MS if lock_timeout_ms is None else lock_timeout_ms
        with self._writers.turn(wait_ms / 1000), Session(bind, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def request_session(self, *, durable: bool = True) -> AbstractContextManager[Session]:
        """The transaction of a Slack request: it fails fast rather than outlast Slack's 3 seconds."""
        return self.session(lock_timeout_ms=REQUEST_LOCK_TIMEOUT_MS, durable=durable)

    def migrate(self) -> None:
        upgrade_to_head(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
        self._writers.close()


class _WriterQueue:
    """SQLite has one writer at a time, and every transaction here takes the write lock (BEGIN
    IMMEDIATE). Waiting for it in SQLite's busy handler means sleeping in steps of up to 100 ms:
    under 10 concurrent commands that made p99 over 2 s (bench/RESULTS.md). So units of work queue
    here instead: threads of a process on a lock, processes sharing the file on an flock of a
    sidecar file; both wake the next waiter as soon as the holder is done."""

    def __init__(self, lock_path: str | None) -> None:
        self._lock = threading.RLock()
        self._depth = 0  # nested units of work in the thread holding the lock
        self._file = open(lock_path, "a+b") if lock_path else None  # noqa: SIM115  (kept open)

    @classmethod
    def for_engine(cls, engine: Engine) -> _WriterQueue | _NoQueue:
        if engine.dialect.name != "sqlite":
            return _NoQueue()
        return cls(_sqlite_lock_path(engine))

    @contextmanager
    def turn(self, timeout_s: float) -> Iterator[None]:
        """Wait at most `timeout_s` for the turn (a stuck holder fails its waiters, never hangs them;
        a Slack request waits less than Slack's 3 s)."""
        deadline = time.monotonic() + timeout_s
        if not self._lock.acquire(timeout=timeout_s):
            raise _busy("waiting for the SQLite writer in this process")
        try:
            self._depth += 1
            try:
                if self._depth == 1 and self._file is not None:
                    self._lock_file(deadline)
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._file is not None:
                    fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        finally:
            self._lock.release()

    def _lock_file(self, deadline: float) -> None:
        assert self._file is not None
        while True:
            try:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _busy("waiting for the SQLite writer in another process") from None
                time.sleep(0.001)  # another Liaison process writes; its turn lasts about a millisecond

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class _NoQueue:
    """PostgreSQL: concurrent transactions, row locks and advisory locks where needed."""

    @contextmanager
    def turn(self, timeout_s: float) -> Iterator[None]:
        yield

    def close(self) -> None:
        pass


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
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(name)})


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
