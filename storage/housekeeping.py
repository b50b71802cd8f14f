"""Bookkeeping rows that only matter for a short while (event ids, recent commands) are pruned."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col

from storage.models import CommandLog, ProcessedEvent


def prune(session: Session, before: datetime) -> int:
    """Forget handled event ids and logged commands older than `before` (Slack retries within
    minutes; duplicate detection looks back minutes). Ledgers and the outbox are never pruned."""
    events = session.execute(delete(ProcessedEvent).where(col(ProcessedEvent.received_at) < before))
    commands = session.execute(delete(CommandLog).where(col(CommandLog.created_at) < before))
    return int(events.rowcount or 0) + int(commands.rowcount or 0)  # type: ignore[attr-defined]
