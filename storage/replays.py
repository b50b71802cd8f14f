"""Signed Slack requests already accepted, so that a captured request replayed inside Slack's
five-minute signature window is not acted on twice. Kept in the database: every process shares it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col

from storage import gates
from storage.lean import Statements
from storage.models import SeenRequest

GUARD_CONTEXT_KEY = "liaison_replay_guard"  # where the edge hands a command's Guard to its listener
_INSERT = "INSERT INTO seen_request (signature, expires_at) VALUES (?, ?)"
_REMEMBER = _INSERT + " ON CONFLICT (signature) DO NOTHING"


def remember(session: Session, signature: str, expires_at: datetime) -> bool:
    """Record `signature`; False when it was already recorded (the request is a replay)."""
    sql = Statements(session)
    return sql.rowcount(_REMEMBER, (signature, sql.when(expires_at))) == 1


def forget_expired(session: Session, now: datetime) -> int:
    """Drop signatures whose window has closed (their timestamps would be refused anyway)."""
    result = session.execute(delete(SeenRequest).where(col(SeenRequest.expires_at) < now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


class Replayed(Exception):
    """The request's signature was already remembered: it is a replay, and its transaction must not
    stand (raised by `Guard.remember_in` when the check runs)."""


@dataclass
class Guard:
    """A slash command's signature, remembered in the transaction that acts on the command (one
    commit per command instead of two); `settled` False: the edge still has to remember it."""

    signature: str
    expires_at: datetime
    settled: bool = False

    def remember_in(self, session: Session) -> None:
        """Remember the signature in `session`'s transaction. On PostgreSQL the note goes to the
        server with the transaction's next statement (storage.lean), and the check with it: a replay
        raises `Replayed` from there, always before the transaction could commit."""
        sql = Statements(session)
        self.settled = True
        if gates.optimistic(session):
            # A replay breaks the table's key: the server stops the transaction, and the careful
            # run (storage.gates) finds the replay below. No check to wait for before the COMMIT.
            sql.later(_INSERT, (self.signature, sql.when(self.expires_at)))
            return

        def check(cursor: Any) -> None:
            if cursor.rowcount != 1:
                raise Replayed(self.signature)

        sql.later(_REMEMBER, (self.signature, sql.when(self.expires_at)), then=check, check=True)

    def failed(self) -> None:
        """The database failed (or was too busy): nothing was recorded, and trying again to
        remember the signature would only make the answer later."""
        self.settled = True
