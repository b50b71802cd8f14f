"""Ledger entries as `/arrivals poland N` records them, for tests that write through storage.recording."""

from __future__ import annotations

from datetime import datetime

from storage.models import MovementKind
from storage.recording import Entry


def arrival(user: str, now: datetime, count: int = 1) -> Entry:
    """`count` arrivals for Poland recorded by `user` at `now`."""
    return Entry(
        country="PL",
        kind=MovementKind.ARRIVAL,
        count=count,
        capability=None,
        location=None,
        note=None,
        recorded_by=user,
        channel_id="C0PL",
        command_text=f"/arrivals poland {count}",
        created_at=now,
    )
