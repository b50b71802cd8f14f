"""Plain DB-API statements inside a session's transaction, for the paths every request takes.

A statement through the ORM costs ~0.1 ms of Python (statement caching, unit of work, result
objects); the same statement on the driver's cursor costs a few microseconds. The commands that
run hundreds of times a second (recording a movement, the replay guard, permission look-ups) use
this; everything else keeps the ORM. Statements are written once with `?` placeholders (SQLite's
style) and converted for psycopg; timestamps go through the same column type as the ORM's, so rows
written either way read back the same.

On PostgreSQL every statement waited for costs a round trip to the server: a few syscalls, a switch
to the server's process and back, and, under load, a turn at the GIL to come back from it. So a
connection keeps a queue of statements not sent yet:

- the transaction's opening: Liaison sends BEGIN itself (the driver is in autocommit mode, see
  storage.db), queued when SQLAlchemy begins a transaction, with the request's timeouts;
- writes whose result is not needed at once (`Statements.later`), e.g. the command log, the Home
  mark, the running totals, the replay guard's note (whose check runs when it has been sent).

The queue goes out with the next statement whose result is read, or with the COMMIT, as one
multi-statement query (bound client-side); the server runs the statements in order, in the same
transaction, so nothing changes but the waiting. Any other statement on the connection (the ORM's)
sends the queue first (the engine's `before_execute` event), and a rollback drops it. psycopg's
pipeline mode was measured and rejected: it made more syscalls per request than it saved.
SQLite runs in process: there `later` runs the statement at once.
"""

from __future__ import annotations

import itertools
import re
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from psycopg import ClientCursor
from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from storage.types import UTCDateTime

Then = Callable[[Any], None]  # given the cursor holding a queued statement's result, once it has run
# statement (psycopg's placeholders), parameters, then, whether `then` checks (see `Statements.later`)
_Queued = tuple[str, Sequence[Any], "Then | None", bool]


class Statements:
    """The session's connection, as the driver sees it (the transaction is the session's)."""

    __slots__ = ("_connection", "_cursor", "_driver_error", "_info", "_postgres", "_time")
    _connection: Connection
    _cursor: Any
    _driver_error: type[Exception]
    _info: dict[Any, Any]  # the pooled connection's: where its queue is kept
    _postgres: bool
    _time: Callable[[datetime], Any]

    def __new__(cls, session: Session, *, autoflush: bool = True) -> Statements:
        """`autoflush=False`: inside a flush (a flush listener), where flushing again is an error."""
        if autoflush:
            session.flush()  # what the ORM would autoflush before a query of its own (a no-op if clean)
        kept = session.info.get(_KEY)
        transaction = session.get_nested_transaction() or session.get_transaction()
        if (
            kept is not None
            and transaction is not None
            and kept[0]() is transaction
            and transaction.is_active
        ):
            statements: Statements = kept[1]  # one per transaction (or savepoint) of the session
            return statements
        # Begins the session's transaction if it has not, and a `begin_nested()` block's SAVEPOINT
        # (the ORM emits it only when the block first asks for its connection).
        connection = session.connection()
        statements = super().__new__(cls)
        statements._connection = connection
        statements._info = connection.info
        statements._postgres = connection.dialect.name == "postgresql"
        driver: Any = connection.connection.driver_connection
        # SQLite's cursor; PostgreSQL's statements go out through `send_queued`.
        statements._cursor = None if statements._postgres else driver.cursor()
        statements._time = _time_binder(connection.dialect)
        statements._driver_error = connection.dialect.loaded_dbapi.Error
        # A weak reference: the transaction refers to the session, whose `info` this is, and a cycle
        # would leave every request's session for the garbage collector (its pauses, bench/RESULTS.md).
        opened = session.get_nested_transaction() or session.get_transaction()
        assert opened is not None  # begun by session.connection()
        session.info[_KEY] = (weakref.ref(opened), statements)
        return statements

    @property
    def postgres(self) -> bool:
        return self._postgres

    def when(self, moment: datetime) -> Any:
        """A timezone-aware moment as the `UTCDateTime` columns store it."""
        return self._time(moment)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run a statement now (after the connection's queue) and return the cursor holding its result."""
        if self._postgres:
            return send_queued(self._connection, last=(_for_postgres(sql), params, None, False))
        announce(self._connection, sql, params)
        try:
            self._cursor.execute(sql, params)
        except self._driver_error as error:
            # As SQLAlchemy raises it (OperationalError, IntegrityError…): callers handle one kind.
            raise DBAPIError.instance(sql, params, error, self._driver_error) from error
        return self._cursor

    def later(
        self, sql: str, params: Sequence[Any] = (), *, then: Then | None = None, check: bool = False
    ) -> None:
        """A statement sent with the next one whose result is read, or with the commit (see the
        module's docstring); `then` is given the cursor holding its result once it has run.
        `check`: `then` may refuse the transaction (raise), so the COMMIT is not sent in the same
        round trip; otherwise `then` only keeps what it reads, and may run once the COMMIT is sent."""
        if not self._postgres:
            cursor = self.execute(sql, params)
            if then is not None:
                then(cursor)
            return
        self._info.setdefault(_QUEUE, []).append((_for_postgres(sql), params, then, check))

    def read_later(self, sql: str, params: Sequence[Any] = ()) -> Callable[[], list[tuple[Any, ...]]]:
        """A read sent with the next statement whose result is read (on PostgreSQL): returns how to
        get its rows (which sends the queue now if it has not gone yet). For reads whose answer is
        needed only after other statements have been queued (a lock, another read)."""
        if not self._postgres:
            rows = self.all(sql, params)
            return lambda: rows
        found: list[list[tuple[Any, ...]]] = []
        self.later(sql, params, then=lambda cursor: found.append([tuple(row) for row in cursor.fetchall()]))

        def read_rows() -> list[tuple[Any, ...]]:
            if not found:
                send_queued(self._connection)
            return found[0]

        return read_rows

    def insert_later(self, sql: str, params: Sequence[Any] = ()) -> Callable[[], int]:
        """`insert`, sent with the next statement: returns how to get the new row's id (which sends
        the queue now if it has not gone yet)."""
        if not self._postgres:
            new_id = self.insert(sql, params)
            return lambda: new_id
        found: list[int] = []
        self.later(sql + " RETURNING id", params, then=lambda cursor: found.append(int(cursor.fetchone()[0])))

        def new_row_id() -> int:
            if not found:
                send_queued(self._connection)
            return found[0]

        return new_row_id

    def flush(self) -> None:
        """Send what is queued on the connection now (PostgreSQL; SQLite never queues)."""
        if self._postgres:
            send_queued(self._connection)

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row = self.execute(sql, params).fetchone()
        return None if row is None else tuple(row)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.execute(sql, params).fetchall()]

    def rowcount(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self.execute(sql, params).rowcount)

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """An INSERT into a table with an integer `id`: the new row's id."""
        if self._postgres:
            row = self.execute(sql + " RETURNING id", params).fetchone()
            return int(row[0])
        return int(self.execute(sql, params).lastrowid)


_KEY = "liaison.statements"
# In the pooled PostgreSQL connection's info (storage.db's events keep them):
_OPENING = "liaison.opening"  # the statements that open the transaction, not sent yet
_QUEUE = "liaison.queued"  # statements queued by `Statements.later`, not sent yet


def open_transaction(info: dict[Any, Any], statements: Sequence[str]) -> None:
    """SQLAlchemy began a transaction: its BEGIN (and settings) go out with its first statement."""
    info[_OPENING] = list(statements)
    info.pop(_QUEUE, None)


def drop_queue(info: dict[Any, Any]) -> bool:
    """The transaction ended (a rollback, or the connection went back to the pool) before its queue
    was sent: the server never saw it. True when the opening was among what was dropped."""
    info.pop(_QUEUE, None)
    return info.pop(_OPENING, None) is not None


def ran_nothing(info: dict[Any, Any]) -> bool:
    """The transaction began but nothing of it has gone to the server, nor is queued to."""
    return _OPENING in info and not info.get(_QUEUE)


def send_queued(connection: Connection, *, last: _Queued | None = None, commit: bool = False) -> Any:
    """Send the connection's queue (then `last`, then a COMMIT) as one query; the cursor on the last
    statement's result, or None when there was nothing to send.

    A COMMIT with nothing before it but an opening was a transaction that never ran a statement:
    nothing is sent. A COMMIT after a queued statement whose `then` checks goes in a round trip of
    its own, so that the check (the replay guard's) can still stop it."""
    info = connection.info
    opening: list[str] | None = info.pop(_OPENING, None)
    queued: list[_Queued] = info.pop(_QUEUE, None) or []
    if last is not None:
        queued.append(last)
    if not queued and (commit or opening is None):
        return None
    if commit and any(check for _statement, _params, _then, check in queued):
        send_queued_now(connection, opening or [], queued)
        opening, queued = [], []
    return send_queued_now(connection, opening or [], queued, commit=commit)


def send_queued_now(
    connection: Connection, opening: Sequence[str], queued: Sequence[_Queued], *, commit: bool = False
) -> Any:
    for statement, params, _then, _check in queued:
        announce(connection, statement, params)
    driver = connection.connection.driver_connection
    driver_error: type[Exception] = connection.dialect.loaded_dbapi.Error
    prepared, cursor = _prepared_on(connection)
    texts: list[str] = []
    values: list[Any] = []
    try:
        if opening and any(statement not in prepared for statement, _params, _then, _check in queued):
            # A PREPARE locks the tables it names: it must wait for them inside the transaction,
            # under the request's lock timeout, not before the opening that sets it.
            texts = list(opening)
            cursor.execute("; ".join(texts))
            opening = ()
        texts = list(opening)
        for statement, params, _then, _check in queued:
            texts.append(prepared.get(statement) or _prepare(driver, prepared, statement))
            values.extend(params)
        if commit:
            texts.append("COMMIT")
        cursor.execute("; ".join(texts), values)
        for _skipped in opening:
            cursor.nextset()
        for index, (_statement, _params, then, _check) in enumerate(queued):
            if index:
                cursor.nextset()
            if then is not None:
                then(cursor)
    except driver_error as error:
        if getattr(error, "sqlstate", None) == _NO_SUCH_PREPARED_STATEMENT:
            # Something else deallocated them (DISCARD ALL by a pooler): prepare again next time.
            prepared.clear()
        raise DBAPIError.instance("; ".join(texts), values, error, driver_error) from error
    return cursor


_PREPARED = "liaison.prepared"  # in the pooled connection's info: (driver connection, EXECUTE texts, cursor)


def _prepared_on(connection: Connection) -> tuple[dict[str, str], Any]:
    """The statements prepared on this connection's server session, each with its EXECUTE text, and
    the cursor that sends them.

    A multi-statement query is bound client-side and would be parsed and planned again each time;
    half of the server's time per request went there. Each statement is prepared once per server
    session instead (PREPARE is not undone by a rollback), and the batch EXECUTEs it. The driver's
    own automatic preparing is off (storage.db): it answers every rollback with DEALLOCATE ALL."""
    driver = connection.connection.driver_connection
    kept: tuple[Any, dict[str, str], Any] | None = connection.info.get(_PREPARED)
    if kept is None or kept[0] is not driver:  # a new server session: nothing prepared on it yet
        kept = (driver, {}, ClientCursor(driver))  # type: ignore[arg-type]
        connection.info[_PREPARED] = kept
    return kept[1], kept[2]


def _prepare(driver: Any, prepared: dict[str, str], statement: str) -> str:
    """PREPARE `statement` (psycopg's placeholders) on the server, in a round trip of its own. Names
    are never reused in a process: one still on the server after `prepared` was cleared cannot clash."""
    name = f"liaison_{next(_NAMES)}"
    count = 0

    def numbered(match: re.Match[str]) -> str:
        nonlocal count
        if match.group() == "%%":
            return "%"
        count += 1
        return f"${count}"

    body = _PLACEHOLDER.sub(numbered, statement)
    driver.execute(f"PREPARE {name} AS {body}", prepare=False)
    execute = f"EXECUTE {name}({', '.join(['%s'] * count)})" if count else f"EXECUTE {name}"
    prepared[statement] = execute
    return execute


_PLACEHOLDER = re.compile(r"%%|%s")
_NAMES = itertools.count()
_NO_SUCH_PREPARED_STATEMENT = "26000"


def announce(connection: Connection, statement: str, params: Sequence[Any]) -> None:
    """Statement capture (tests, tracing) sees plain statements like the ORM's."""
    listeners = connection.dispatch.before_cursor_execute
    if listeners:
        for listener in listeners:
            listener(connection, None, statement, params, None, False)


@cache
def _for_postgres(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


_binders: dict[str, Callable[[datetime], Any]] = {}


def _time_binder(dialect: Dialect) -> Callable[[datetime], Any]:
    binder = _binders.get(dialect.name)
    if binder is None:
        # The dialect's own form (SQLite: text with microseconds, as the ORM writes it): a bare
        # datetime would reach sqlite3's default adapter, which drops `.000000` (so an instant
        # compared as earlier than itself) and is deprecated since Python 3.12.
        processor = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)

        def binder(moment: datetime) -> Any:
            return processor(moment) if processor is not None else moment

        _binders[dialect.name] = binder
    return binder


def stored_time(value: Any) -> datetime:
    """A `UTCDateTime` column read on the driver's cursor, as the ORM would return it."""
    result = UTCDateTime().process_result_value(
        datetime.fromisoformat(value) if isinstance(value, str) else value, _NO_DIALECT
    )
    assert result is not None
    return result


_NO_DIALECT: Any = None
