"""Writing one movement: its ledger row, its running totals and the Home boards' stale mark, in the
caller's transaction, as plain statements (`/arrivals` and `/departures` run hundreds of times a
second under load; see storage/lean.py)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlmodel import Session

from storage import home_boards, totals
from storage.lean import Statements
from storage.ledger import CountryStatus
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


def record_movement(session: Session, entry: Entry) -> tuple[Entry, CountryStatus]:
    """Write `entry` and add it to the running totals; returns it with its id, and its country's
    totals with it.

    The totals row is written last: on PostgreSQL its row lock (one of the country's shards, see
    storage.totals) is held from that statement to the commit, and a concurrent movement that picked
    the same shard waits for it, so nothing else runs in between (the country's totals are read
    before it and the entry added to them). On PostgreSQL the ledger row and the Home mark go to the
    server with that read, and the totals row with the COMMIT (storage.lean)."""
    sql = Statements(session)
    new_id = sql.insert_later(
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
    home_boards.mark_stale(session, entry.created_at)
    status = totals.deployment_status(session, entry.country).get(entry.country, CountryStatus(entry.country))
    arrived, departed = (entry.count, 0) if entry.kind is MovementKind.ARRIVAL else (0, entry.count)
    bucket = status.bucket(entry.capability)
    bucket.arrived += arrived
    bucket.departed += departed
    totals.add_movement(sql, entry.country, entry.capability, arrived, departed)
    return replace(entry, id=new_id()), status
