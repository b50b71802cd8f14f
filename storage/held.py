"""One long-lived PostgreSQL connection per thread that serves Slack requests.

A request's transaction used to check a connection out of the pool and back in: SQLAlchemy builds
a `Connection`, runs the pool's checkout and checkin events and its reset-on-return, about 7 % of
the CPU of an `/arrivals` (bench/RESULTS.md). A request thread keeps its connection between
requests instead, and each request's session is bound to it.

What the pool's checkout did for a request is kept here:
- a connection idle for a while is pinged before use, and replaced if it is gone (the server
  restarted); one used moments ago is trusted (if it broke since, that request fails, see next);
- a connection the driver found broken during a transaction (SQLAlchemy invalidated it) is closed
  and a new one is opened for the thread's next request;
- a thread that asks again while its connection is in use (a request session inside another) gets
  a pooled one, so the inner transaction stays its own;
- at most `limit` connections are held, so the pool keeps the rest for background work; a thread
  past that uses the pool as before. The connection of a thread that has ended goes back to the
  pool when its slot is wanted, and `close()` gives them all back.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine

Ping = Callable[[Any], None]  # given the driver's connection: raises if the server is gone


class _Held:
    __slots__ = ("connection", "in_use", "last_used", "options", "thread")

    def __init__(self, thread: threading.Thread, connection: Connection) -> None:
        self.thread = weakref.ref(thread)
        self.connection = connection
        self.in_use = False
        self.last_used = time.monotonic()
        self.options: dict[str, Any] | None = None


class HeldConnections:
    """The connections held by request threads, at most `limit`."""

    def __init__(self, engine: Engine, *, limit: int, ping: Ping, idle_after: Callable[[], float]) -> None:
        self._engine = engine
        self._limit = limit
        self._ping = ping
        self._idle_after = idle_after  # seconds (a function: tests change the setting)
        self._lock = threading.Lock()
        self._held: list[_Held] = []
        self._mine = threading.local()
        self._closed = False

    def take(self, options: dict[str, Any]) -> Connection | None:
        """The calling thread's connection, not in a transaction, with `options` as its execution
        options; None when it has none to give (the caller uses the pool)."""
        held: _Held | None = getattr(self._mine, "held", None)
        if held is not None and held.in_use:
            return None
        if (
            held is not None
            and not held.connection.closed
            and time.monotonic() - held.last_used >= self._idle_after()
            and not self._alive(held.connection)
        ):
            self._release(held)
            held = None
        if held is None or held.connection.closed:
            held = self._hold()
            if held is None:
                return None
        held.in_use = True
        if held.options != options:
            held.connection.execution_options(**options)
            held.options = options
        return held.connection

    def give_back(self, connection: Connection, *, failed: bool) -> None:
        """The session bound to `connection` has ended: committed, or `failed` (rolled back)."""
        held: _Held | None = getattr(self._mine, "held", None)
        if held is None or held.connection is not connection:
            return
        held.in_use = False
        held.last_used = time.monotonic()
        if failed and not connection.invalidated:
            # A COMMIT refused by the server (a lock wait ran out on the statements sent with it)
            # ends SQLAlchemy's transaction without a rollback: the server's is still open, and
            # failed. The pool's reset on return rolled it back; so does this.
            try:
                connection.connection.dbapi_connection.rollback()  # type: ignore[union-attr]
            except Exception:
                connection.invalidate()
        if connection.invalidated:  # the server went away during the transaction
            self._release(held)

    def close(self) -> None:
        """Give every held connection back to the pool (the engine is being disposed of)."""
        with self._lock:
            self._closed = True
            held, self._held = self._held, []
        for each in held:
            _close_quietly(each.connection)

    def _hold(self) -> _Held | None:
        with self._lock:
            if self._closed:
                return None
            if len(self._held) >= self._limit:
                self._drop_ended_threads()
                if len(self._held) >= self._limit:
                    return None
            held = _Held(threading.current_thread(), self._engine.connect())
            self._held.append(held)
        self._mine.held = held
        return held

    def _drop_ended_threads(self) -> None:
        """(Under the lock.) Their connections go back to the pool: nobody else can be using them."""
        ended = [each for each in self._held if not _is_alive(each.thread())]
        for each in ended:
            self._held.remove(each)
            _close_quietly(each.connection)

    def _alive(self, connection: Connection) -> bool:
        if connection.invalidated:
            return False
        try:
            self._ping(connection.connection.driver_connection)
        except Exception:
            connection.invalidate()
            return False
        return True

    def _release(self, held: _Held) -> None:
        with self._lock:
            if held in self._held:
                self._held.remove(held)
        if getattr(self._mine, "held", None) is held:
            del self._mine.held
        _close_quietly(held.connection)


def _is_alive(thread: threading.Thread | None) -> bool:
    return thread is not None and thread.is_alive()


def _close_quietly(connection: Connection) -> None:
    with contextlib.suppress(Exception):  # a broken connection: the pool has already let it go
        connection.close()  # back to the pool (an invalidated one is discarded there)
