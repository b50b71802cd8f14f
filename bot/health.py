"""`GET /healthz`: `ok`, or `degraded` with the reasons ops must act on (the process still serves)."""

from __future__ import annotations

from datetime import timedelta

from bot.runtime import Runtime
from storage import outbox

BACKLOG_GRACE = timedelta(minutes=5)  # a message this late means Slack is not taking our calls


def delivery_problems(runtime: Runtime) -> list[str]:
    now = runtime.clock.now()
    with runtime.db.session() as session:
        reasons = [f"{issue.key}: {issue.detail}" for issue in outbox.issues(session)]
        oldest = outbox.oldest_overdue(session, now=now, by=BACKLOG_GRACE)
    if oldest is not None:
        minutes = int((now - oldest).total_seconds() // 60)
        reasons.append(f"backlog: messages have been waiting for Slack for {minutes} minutes")
    return reasons
