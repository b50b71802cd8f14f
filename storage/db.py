"""One engine and session factory for the whole process, and the schema migrations."""

from __future__ import annotations

import fcntl
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def create_db_engine(url: str) -> Engine:
    url = normalize_database_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        return _create_sqlite_engine(url)
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


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
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode = WAL")
            # Durable: in WAL mode FULL syncs the WAL at every commit, so an acknowledged command
            # survives a power loss (NORMAL would only survive a crash of the process).
            cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
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
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends normally, rolled back on any exception."""
        with self._writers.turn(), Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

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
        if not is_sqlite(engine):
            return _NoQueue()
        database = engine.url.database
        in_memory = database in (None, "", ":memory:") or "mode=memory" in str(engine.url)
        return cls(None if in_memory else f"{database}-liaison.lock")

    @contextmanager
    def turn(self) -> Iterator[None]:
        # As long as SQLite's own busy timeout: a stuck holder fails its waiters, never hangs them.
        if not self._lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            raise OperationalError("waiting for the SQLite writer", None, Exception("database is locked"))
        try:
            self._depth += 1
            try:
                if self._depth == 1 and self._file is not None:
                    fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._file is not None:
                    fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        finally:
            self._lock.release()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class _NoQueue:
    """PostgreSQL: concurrent transactions, row locks and advisory locks where needed."""

    @contextmanager
    def turn(self) -> Iterator[None]:
        yield

    def close(self) -> None:
        pass


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
    command.upgrade(alembic_config(engine), "head")
