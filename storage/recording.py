"""Writing one movement: its ledger row, its running totals and the Home board's change mark, in the
caller's transaction, as plain statements (`/arrivals` and `/departures` run hundreds of times a
second under load; see storage/lean.py)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlmodel import Session

from storage import changes, totals
from storage.lean import Statements
from storage.models import MovementKind

_INSERT = (
    "INSERT INTO movement (country, kind, count, capability, location, note, recorded_by, channel_id, "
    "command_text, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True)
class Entry:
    """A movement as recorded (`id` is the ledger's entry number once written)."""

    country: str
    kind: MovementKind
    count: int
    capability: str | None
    location: str | None
    note: str | None
    recorded_by: str
    channel_id: str
    command_text: str
    created_at: datetime
    id: int | None = None
    reverses_id: int | None = None


def record_movement(session: Session, entry: Entry) -> Entry:
    """Write `entry` and add it to the running totals; returns it with its id."""
    sql = Statements(session)
    entry_id = sql.insert(
        _INSERT,
        (
            entry.country,
            entry.kind.value,
            entry.count,
            entry.capability,
            entry.location,
            entry.note,
            entry.recorded_by,
            entry.channel_id,
            entry.command_text,
            sql.when(entry.created_at),
        ),
    )
    arrived, departed = (entry.count, 0) if entry.kind is MovementKind.ARRIVAL else (0, entry.count)
    totals.add_movement(sql, entry.country, entry.capability, arrived, departed)
    changes.mark_board_changed(session)
    return replace(entry, id=entry_id)
