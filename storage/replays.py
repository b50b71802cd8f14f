"""Signed Slack requests already accepted, so that a captured request replayed inside Slack's
five-minute signature window is not acted on twice. Kept in the database: every process shares it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from storage.models import SeenRequest


def remember(session: Session, signature: str, expires_at: datetime) -> bool:
    """Record `signature`; False when it was already recorded (the request is a replay)."""
    values = {"signature": signature, "expires_at": expires_at}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(SeenRequest).values(**values).on_conflict_do_nothing(index_elements=["signature"])
    return bool(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def forget_expired(session: Session, now: datetime) -> int:
    """Drop signatures whose window has closed (their timestamps would be refused anyway)."""
    result = session.execute(delete(SeenRequest).where(col(SeenRequest.expires_at) < now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
