"""Running totals per country × capability, kept in the same transaction as every ledger row.

The ledgers (`movement`, `pledge`) stay the truth; `deployment_total` is what they add up to, so that
`/deployment` reads a few dozen rows however long the ledgers grow. Every ORM flush that inserts ledger
rows also upserts their totals (a session-wide listener, so no code path can forget it).
`liaison doctor` checks the totals against the ledgers' aggregate and can rebuild them from it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, event, func, select
from sqlalchemy.orm import UOWTransaction
from sqlmodel import Session

from storage import ledger
from storage.lean import Statements
from storage.ledger import CountryStatus
from storage.models import DeploymentTotal, Movement, MovementKind, Pledge

NO_CAPABILITY = ""  # the stored key of personnel recorded without a capability (part of the primary key)


def _key(capability: str | None) -> str:
    return NO_CAPABILITY if capability is None else capability


def _capability(key: str) -> str | None:
    return None if key == NO_CAPABILITY else key


_SELECT = "SELECT country, capability, SUM(pledged), SUM(arrived), SUM(departed) FROM deployment_total"
_GROUP = " GROUP BY country, capability"
# PostgreSQL: a movement adds to one of these rows, picked at random, so concurrent movements of one
# country and capability rarely wait on each other's row lock until their commits. SQLite has one
# writer at a time anyway: one row.
POSTGRES_SHARDS = 8


def deployment_status(session: Session, country: str | None = None) -> dict[str, CountryStatus]:
    """The same answer as `ledger.deployment_status`, read from the running totals (one small query)."""
    sql = Statements(session)
    if country is None:
        return _statuses(sql.all(_SELECT + _GROUP + " ORDER BY country"))
    return country_status_soon(sql, country)()


def country_status_soon(sql: Statements, country: str) -> Callable[[], dict[str, CountryStatus]]:
    """`deployment_status(session, country)`, read with the statements queued after it (storage.lean)."""
    rows = sql.read_later(_SELECT + " WHERE country = ?" + _GROUP, (country,))
    return lambda: _statuses(rows())


def _statuses(rows: Iterable[tuple[Any, ...]]) -> dict[str, CountryStatus]:
    statuses: dict[str, CountryStatus] = {}
    for code, capability, pledged, arrived, departed in rows:
        bucket = statuses.setdefault(code, CountryStatus(code)).bucket(_capability(capability))
        bucket.pledged, bucket.arrived, bucket.departed = int(pledged), int(arrived), int(departed)
    return statuses


_ON_DUTY = "SELECT SUM(arrived - departed) FROM deployment_total WHERE country = ? AND capability = ?"


def on_duty(session: Session, country: str, capability: str | None) -> int:
    return on_duty_soon(session, country, capability)()


def on_duty_soon(session: Session, country: str, capability: str | None) -> Callable[[], int]:
    """`on_duty`, read with the statements queued after it (storage.lean)."""
    rows = Statements(session).read_later(_ON_DUTY, (country, _key(capability)))

    def answer() -> int:
        found = rows()
        return 0 if not found or found[0][0] is None else int(found[0][0])

    return answer


def short_of(country: str, capability: str | None, count: int) -> tuple[str, tuple[object, ...]]:
    """The SQL condition (storage.gates) true when fewer than `count` are on duty for `country` and
    `capability`: a departure of `count` would go below zero."""
    return f"COALESCE(({_ON_DUTY}), 0) < ?", (country, _key(capability), count)


def _pick_shard(postgres: bool) -> int:
    return random.randrange(POSTGRES_SHARDS) if postgres else 0  # noqa: S311  (spreading, not secrecy)


def add_movement(sql: Statements, country: str, capability: str | None, arrived: int, departed: int) -> None:
    """Add a movement to its country's running totals (rows written through the ORM get here from
    the flush listener below; storage.recording calls it for the rows it writes itself)."""
    shard = _pick_shard(sql.postgres)
    sql.later(_ADD_MOVEMENTS, (country, _key(capability), shard, arrived, departed))


@dataclass
class _Delta:
    arrived: int = 0
    departed: int = 0
    pledge: tuple[int, int] | None = None  # (pledge id, headcount) of the latest pledge in this flush


def _collect(rows: Iterable[object]) -> dict[tuple[str, str], _Delta]:
    deltas: dict[tuple[str, str], _Delta] = {}
    for row in rows:
        if isinstance(row, Movement):
            delta = deltas.setdefault((row.country, _key(row.capability)), _Delta())
            if MovementKind(row.kind) is MovementKind.ARRIVAL:
                delta.arrived += row.count
            else:
                delta.departed += row.count
        elif isinstance(row, Pledge):
            assert row.id is not None
            delta = deltas.setdefault((row.country, _key(row.capability)), _Delta())
            if delta.pledge is None or row.id > delta.pledge[0]:
                delta.pledge = (row.id, row.headcount)
    return deltas


# Written once for both databases: SQLite (3.24+) and PostgreSQL share this upsert syntax.
_ADD_MOVEMENTS = (
    "INSERT INTO deployment_total (country, capability, shard, pledged, arrived, departed) "
    "VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT (country, capability, shard) DO UPDATE SET "
    "arrived = deployment_total.arrived + excluded.arrived, "
    "departed = deployment_total.departed + excluded.departed"
)
# A pledge replaces the previous one: it is kept on shard 0 only (the other shards' pledged stays 0).
_ADD_WITH_PLEDGE = (
    "INSERT INTO deployment_total (country, capability, shard, pledged, arrived, departed) "
    "VALUES (?, ?, 0, ?, ?, ?) ON CONFLICT (country, capability, shard) DO UPDATE SET "
    "pledged = excluded.pledged, "
    "arrived = deployment_total.arrived + excluded.arrived, "
    "departed = deployment_total.departed + excluded.departed"
)


def _upsert(sql: Statements, country: str, capability: str, delta: _Delta) -> None:
    if delta.pledge is None:
        add_movement(sql, country, capability, delta.arrived, delta.departed)
    else:
        sql.later(_ADD_WITH_PLEDGE, (country, capability, delta.pledge[1], delta.arrived, delta.departed))


def _after_flush(session: Session, _context: UOWTransaction) -> None:
    if not session.new:
        return
    sql = Statements(session, autoflush=False)
    for (country, capability), delta in _collect(session.new).items():
        _upsert(sql, country, capability, delta)


event.listen(Session, "after_flush", _after_flush)


# -- checking and rebuilding (liaison doctor) ---------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    country: str
    capability: str | None
    field: str
    ledger: int
    totals: int

    def describe(self) -> str:
        where = f"{self.country} / {self.capability or 'unspecified'}"
        if self.field == "row":
            state = "missing from" if self.ledger else "only in"
            return f"{where}: {state} the totals"
        return f"{where}: {self.field} is {self.totals:,} in the totals but {self.ledger:,} in the ledger"


def mismatches(session: Session) -> list[Mismatch]:
    """Where the running totals differ from the ledgers' aggregate (empty when they agree)."""
    truth = ledger.deployment_status(session)
    kept = deployment_status(session)
    found: list[Mismatch] = []
    for country in sorted(set(truth) | set(kept)):
        expected = truth.get(country, CountryStatus(country)).by_capability
        actual = kept.get(country, CountryStatus(country)).by_capability
        for capability in sorted(set(expected) | set(actual), key=lambda c: c or ""):
            want, have = expected.get(capability), actual.get(capability)
            if (want is None) != (have is None):
                found.append(
                    Mismatch(country, capability, "row", int(want is not None), int(have is not None))
                )
                continue
            for field in ("pledged", "arrived", "departed"):
                a, b = getattr(want, field), getattr(have, field)
                if a != b:
                    found.append(Mismatch(country, capability, field, a, b))
    return found


def rebuild(session: Session) -> int:
    """Replace the totals with the ledgers' aggregate; the number of rows written."""
    session.execute(delete(DeploymentTotal))
    rows = [
        DeploymentTotal(
            country=country,
            capability=_key(capability),
            pledged=bucket.pledged,
            arrived=bucket.arrived,
            departed=bucket.departed,
        )
        for country, status in ledger.deployment_status(session).items()
        for capability, bucket in status.by_capability.items()
    ]
    session.add_all(rows)
    session.flush()
    return len(rows)


def row_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(DeploymentTotal)).scalar_one())
