"""Plain DB-API statements inside a session's transaction, for the paths every request takes.

A statement through the ORM costs ~0.1 ms of Python (statement caching, unit of work, result
objects); the same statement on the driver's cursor costs a few microseconds. The commands that
run hundreds of times a second (recording a movement, the replay guard, permission look-ups) use
this; everything else keeps the ORM. Statements are written once with `?` placeholders (SQLite's
style) and converted for psycopg; timestamps go through the same column type as the ORM's, so rows
written either way read back the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from storage.types import UTCDateTime


class Statements:
    """The session's connection, as the driver sees it (the transaction is the session's)."""

    __slots__ = ("_connection", "_cursor", "_driver_error", "_postgres", "_time")
    _connection: Connection
    _cursor: Any
    _driver_error: type[Exception]
    _postgres: bool
    _time: Callable[[datetime], Any]

    def __new__(cls, session: Session, *, autoflush: bool = True) -> Statements:
        """`autoflush=False`: inside a flush (a flush listener), where flushing again is an error."""
        if autoflush and (session.new or session.deleted or session.dirty):
            session.flush()  # what the ORM would autoflush before a query of its own
        kept = session.info.get(_KEY)
        transaction = session.get_transaction()
        if kept is not None and transaction is not None and kept[0] is transaction and transaction.is_active:
            statements: Statements = kept[1]  # one per transaction of the session
            return statements
        connection = session.connection()  # begins the session's transaction if it has not
        statements = super().__new__(cls)
        statements._connection = connection
        statements._postgres = connection.dialect.name == "postgresql"
        statements._cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        statements._time = _time_binder(connection.dialect)
        statements._driver_error = connection.dialect.loaded_dbapi.Error
        session.info[_KEY] = (session.get_transaction(), statements)
        return statements

    @property
    def postgres(self) -> bool:
        return self._postgres

    def when(self, moment: datetime) -> Any:
        """A timezone-aware moment as the `UTCDateTime` columns store it."""
        return self._time(moment)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        statement = _for_postgres(sql) if self._postgres else sql
        listeners = self._connection.dispatch.before_cursor_execute
        if listeners:  # statement capture (tests, tracing) sees these statements like any other
            for listener in listeners:
                listener(self._connection, self._cursor, statement, params, None, False)
        try:
            self._cursor.execute(statement, params)
        except self._driver_error as error:
            # As SQLAlchemy raises it (OperationalError, IntegrityError…): callers handle one kind.
            raise DBAPIError.instance(statement, params, error, self._driver_error) from error
        return self._cursor

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


@cache
def _for_postgres(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


_binders: dict[str, Callable[[datetime], Any]] = {}


def _time_binder(dialect: Dialect) -> Callable[[datetime], Any]:
    binder = _binders.get(dialect.name)
    if binder is None:
        processor = UTCDateTime().bind_processor(dialect)

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
