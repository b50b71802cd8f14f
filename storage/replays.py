"""Signed Slack requests already accepted, so that a captured request replayed inside Slack's
five-minute signature window is not acted on twice. Kept in the database: every process shares it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col

from storage.lean import Statements
from storage.models import SeenRequest

GUARD_CONTEXT_KEY = "liaison_replay_guard"  # where the edge hands a command's Guard to its listener
_REMEMBER = (
    "INSERT INTO seen_request (signature, expires_at) VALUES (?, ?) ON CONFLICT (signature) DO NOTHING"
)


def remember(session: Session, signature: str, expires_at: datetime) -> bool:
    """Record `signature`; False when it was already recorded (the request is a replay)."""
    sql = Statements(session)
    return sql.rowcount(_REMEMBER, (signature, sql.when(expires_at))) == 1


def forget_expired(session: Session, now: datetime) -> int:
    """Drop signatures whose window has closed (their timestamps would be refused anyway)."""
    result = session.execute(delete(SeenRequest).where(col(SeenRequest.expires_at) < now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass
class Guard:
    """A slash command's signature, remembered in the transaction that acts on the command (one
    commit per command instead of two); `settled` False: the edge still has to remember it."""

    signature: str
    expires_at: datetime
    settled: bool = False

    def first_time(self, session: Session) -> bool:
        """Remember the signature in `session`'s transaction; False when the request is a replay."""
        first = remember(session, self.signature, self.expires_at)
        self.settled = True
        return first

    def refused(self) -> None:
        """The command was refused and its transaction rolled back: remember the signature apart."""
        self.settled = False

    def failed(self) -> None:
        """The database failed (or was too busy): nothing was recorded, and trying again to
        remember the signature would only make the answer later."""
        self.settled = True
