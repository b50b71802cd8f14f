"""`GET /healthz`: ready, and the database answers within a fraction of Slack's 3 seconds.

A check is a function returning the reasons it is unhealthy (none when healthy); `Health` gathers
them. More checks (delivery, credentials) plug in as further functions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import text

from bot.errors import is_database_busy
from storage.db import Database

Check = Callable[[], list[str]]
HEALTH_LOCK_TIMEOUT_MS = 500


@dataclass(frozen=True)
class Health:
    reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.reasons

    @property
    def status(self) -> int:
        return 200 if self.ok else 503

    def to_json(self) -> bytes:
        body = {"status": "ok" if self.ok else "unavailable", "reasons": list(self.reasons)}
        return json.dumps(body).encode() + b"\n"


def gather(checks: Sequence[Check]) -> Health:
    reasons: list[str] = []
    for check in checks:
        reasons += check()
    return Health(tuple(reasons))


def ready_check(ready: Callable[[], bool]) -> Check:
    return lambda: [] if ready() else ["starting"]


def database_check(db: Database, timeout_ms: int = HEALTH_LOCK_TIMEOUT_MS) -> Check:
    """`SELECT 1` in a transaction that waits at most `timeout_ms` for a lock. On SQLite the
    transaction takes the write lock (BEGIN IMMEDIATE), so a lock held elsewhere shows here too."""

    def check() -> list[str]:
        try:
            with db.session(lock_timeout_ms=timeout_ms) as session:
                session.execute(text("SELECT 1"))
        except Exception as error:
            if is_database_busy(error):
                return ["database busy: a lock held elsewhere would delay requests"]
            return [f"database unavailable ({type(error).__name__})"]
        return []

    return check
