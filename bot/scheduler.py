"""Scheduled work (APScheduler 3): acknowledgement reminders and escalations.

Jobs are defined in code on every process; what they do is derived from the database and claimed
row by row there, so several bot processes and restarts neither lose nor double a reminder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.runtime import Runtime
from commands.notices import send_reminders
from storage.housekeeping import prune

log = logging.getLogger(__name__)

REMINDER_JOB = "alert-acknowledgement-reminders"
HOUSEKEEPING_JOB = "prune-bookkeeping"
BOOKKEEPING_RETENTION = timedelta(days=2)


def run_reminders(runtime: Runtime) -> int:
    """One pass over the current notice's silent countries (the scheduler runs it every minute)."""
    with runtime.db.session() as session:
        sent = send_reminders(session, runtime.config, runtime.clock.now())
    if sent:
        runtime.outbox.wake()
    return sent


def run_housekeeping(runtime: Runtime) -> int:
    with runtime.db.session() as session:
        return prune(session, runtime.clock.now() - BOOKKEEPING_RETENTION)


def build_scheduler(runtime: Runtime) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        timezone=runtime.config.zone,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
    )
    scheduler.add_job(
        _safely(run_reminders),
        CronTrigger(second=0, timezone=runtime.config.zone),  # every minute, on the minute
        args=[runtime],
        id=REMINDER_JOB,
        name="remind silent countries, escalate to ops",
        replace_existing=True,
    )
    scheduler.add_job(
        _safely(run_housekeeping),
        CronTrigger(minute=17, timezone=runtime.config.zone),
        args=[runtime],
        id=HOUSEKEEPING_JOB,
        name="prune old event ids and command log",
        replace_existing=True,
    )
    return scheduler


def _safely(job: Callable[[Runtime], object]) -> Callable[[Runtime], None]:
    def run(runtime: Runtime) -> None:
        try:
            job(runtime)
        except Exception:
            log.exception("scheduled job failed; it runs again at the next tick")

    return run
