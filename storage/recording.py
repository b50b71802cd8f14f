"""Writing one movement: its ledger row, its running totals and the Home boards' stale mark, in the
caller's transaction, as plain statements (`/arrivals` and `/departures` run hundreds of times a
second under load; see storage/lean.py)."""

from __future__ import annotations

from collections.abc import Callable
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
    totals with it."""
    return record_movement_soon(session, entry)()


def record_movement_soon(session: Session, entry: Entry) -> Callable[[], tuple[Entry, CountryStatus]]:
    """`record_movement`, with every statement queued (storage.lean): on PostgreSQL they go to the
    server with the next read or with the COMMIT, in one round trip. Call the result for the entry
    with its id and the country's totals with it (it sends the queue if it has not gone yet).

    The country's totals are read before its totals row is written, and the entry added to them; the
    totals row goes last (on PostgreSQL its row lock, on one of the country's shards, see
    storage.totals, is then held only until the COMMIT right behind it)."""
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
    statuses = totals.country_status_soon(sql, entry.country)
    arrived, departed = (entry.count, 0) if entry.kind is MovementKind.ARRIVAL else (0, entry.count)
    totals.add_movement(sql, entry.country, entry.capability, arrived, departed)

    def recorded() -> tuple[Entry, CountryStatus]:
        status = statuses().get(entry.country, CountryStatus(entry.country))
        bucket = status.bucket(entry.capability)
        bucket.arrived += arrived
        bucket.departed += departed
        return replace(entry, id=new_id()), status

    return recorded
