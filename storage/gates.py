"""Optimistic requests on PostgreSQL: a command's checks run on the server, in the same round trip
as its writes and its COMMIT.

A recording command reads (the caller's standing, an earlier identical entry, the replay guard's
note), decides in Python, then writes and commits: two round trips, and each costs the request
thread ~70 µs of CPU on top of the wait (bench/RESULTS.md). When nearly every command passes its
checks, the first attempt sends the checks as a statement that stops the transaction if any of
them fails (`refuse_if_any`: it calls liaison_reconsider(), migration 0012), followed by the writes
and the COMMIT, all in one round trip. If the server stops it, nothing of it stands (the
transaction is rolled back whole), and `Database.run_request` runs the command again the usual
way, where Python reads, decides and explains (the refusal, the duplicate prompt, the replay).

So a check here only has to say *whether* the command may go ahead without a second look; what
happens when it may not is decided by the careful run. Only the first attempt of
`Database.run_request(..., optimistic=True)` is optimistic (`allow`), for the commands that declare
`OPTIMISTIC` (the recordings): their code lets every database error through, so none can take the
server's stop (or the replay note's broken key) for an answer of its own. Every other transaction
is careful.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

from storage.lean import Statements

RECONSIDER_SQLSTATE = "LI001"  # raised by liaison_reconsider()
_UNIQUE_VIOLATION = "23505"
_OPTIMISTIC = "liaison.optimistic"  # in session.info: this transaction may be optimistic
# Tables whose unique key refuses an optimistic request that a careful run refuses on its own terms
# (the replay guard's plain INSERT: a replay, or the same request twice at once).
_GUARDED_TABLES = frozenset({"seen_request"})


def allow(session: Session) -> None:
    """This transaction's commands may run optimistically (the first attempt of a request)."""
    session.info[_OPTIMISTIC] = True


def optimistic(session: Session) -> bool:
    """Whether this transaction's commands may leave their checks to the server (PostgreSQL, and
    allowed by `allow`)."""
    return bool(session.info.get(_OPTIMISTIC)) and Statements(session).postgres


# A condition in SQL (`?` placeholders) and its parameters.
Condition = tuple[str, Sequence[Any]]


def refuse_if_any(session: Session, conditions: Sequence[Condition]) -> None:
    """Queue a statement that stops the transaction when any of `conditions` holds, run after the
    statements queued before it (a lock, a write) and before those queued after it."""
    if not conditions:
        return
    where = " OR ".join(f"({sql})" for sql, _params in conditions)
    params = [param for _sql, values in conditions for param in values]
    Statements(session).later(f"SELECT liaison_reconsider() WHERE {where}", params)


def reconsidered(error: BaseException) -> bool:
    """Whether `error` is the server stopping an optimistic transaction: run it again carefully."""
    orig = getattr(error, "orig", None)
    state = getattr(orig, "sqlstate", None)
    if state == RECONSIDER_SQLSTATE:
        return True
    if state == _UNIQUE_VIOLATION:
        diag = getattr(orig, "diag", None)
        return getattr(diag, "table_name", None) in _GUARDED_TABLES
    return False
