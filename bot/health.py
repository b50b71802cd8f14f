"""`GET /healthz`: 503 `unavailable` while the process cannot serve (starting, the database not
answering within a fraction of Slack's 3 seconds); 200 `degraded` while it serves but Slack delivery
needs an admin (credentials, the ops channel, a backlog); 200 `ok` otherwise.

A check is a function returning the reasons it is unhealthy (none when healthy); `Health` gathers
them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text

from bot.errors import is_database_busy
from bot.runtime import Runtime
from storage import outbox
from storage.db import Database

Check = Callable[[], list[str]]
HEALTH_LOCK_TIMEOUT_MS = 500
BACKLOG_GRACE = timedelta(minutes=5)  # a message this late means Slack is not taking our calls


@dataclass(frozen=True)
class Health:
    reasons: tuple[str, ...] = ()  # why the process cannot serve
    degraded: tuple[str, ...] = ()  # what an admin must fix while it serves

    @property
    def ok(self) -> bool:
        return not self.reasons

    @property
    def status(self) -> int:
        return 200 if self.ok else 503

    def to_json(self) -> bytes:
        if self.reasons:
            body = {"status": "unavailable", "reasons": [*self.reasons, *self.degraded]}
        elif self.degraded:
            body = {"status": "degraded", "reasons": list(self.degraded)}
        else:
            body = {"status": "ok", "reasons": []}
        return json.dumps(body).encode() + b"\n"


def gather(checks: Sequence[Check], degradations: Sequence[Check] = ()) -> Health:
    reasons = [reason for check in checks for reason in check()]
    if reasons:
        return Health(tuple(reasons))  # not serving: the rest would only be noise (or hang)
    return Health(degraded=tuple(reason for check in degradations for reason in check()))


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


def delivery_check(runtime: Runtime) -> Check:
    """Slack delivery problems an admin must act on: the open service issues (credentials, scopes,
    the ops channel) and messages waiting for Slack longer than BACKLOG_GRACE."""

    def check() -> list[str]:
        now = runtime.clock.now()
        with runtime.db.session(lock_timeout_ms=HEALTH_LOCK_TIMEOUT_MS) as session:
            reasons = [f"{issue.key}: {issue.detail}" for issue in outbox.issues(session)]
            oldest = outbox.oldest_overdue(session, now=now, by=BACKLOG_GRACE)
        if oldest is not None:
            minutes = int((now - oldest).total_seconds() // 60)
            reasons.append(f"backlog: messages have been waiting for Slack for {minutes} minutes")
        return reasons

    return check
