"""Scheduled work (APScheduler 3): acknowledgement reminders and escalations, incident timers,
digests, housekeeping and the Home boards' refresh.

Jobs are defined in code on every process; what they do is derived from the database and claimed
row by row there, so several bot processes and restarts neither lose nor double a reminder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot import home
from bot.digests import DueReport, send_due
from bot.incidents import run_incident_timers
from bot.runtime import Runtime
from commands.notices import send_reminders
from storage import files as stored_files
from storage.housekeeping import prune
from storage.replays import forget_expired

log = logging.getLogger(__name__)

REMINDER_JOB = "alert-acknowledgement-reminders"
INCIDENT_TIMERS_JOB = "incident-escalation-timers"
HOUSEKEEPING_JOB = "prune-bookkeeping"
DIGEST_JOB = "daily-digests"
HOME_REFRESH_JOB = "home-board-refresh"
# Its own executor, so its runs (every second) can be kept out of the INFO log of the other jobs'.
HOME_REFRESH_EXECUTOR = "home-refresh"
HOME_REFRESH_TICK_SECONDS = 1.0  # how often a process looks for stale boards (one cheap SELECT)
BOOKKEEPING_RETENTION = timedelta(days=2)


def run_reminders(runtime: Runtime) -> int:
    """One pass over the current notice's silent countries (the scheduler runs it every minute)."""
    with runtime.db.session() as session:
        sent = send_reminders(session, runtime.config, runtime.clock.now())
    if sent:
        runtime.outbox.wake()
    return sent


def run_digests(runtime: Runtime) -> DueReport:
    """Send the digests that are due (the scheduler runs it every minute; claims make it exactly once)."""
    report = send_due(
        runtime.db,
        runtime.config,
        runtime.clock.now(),
        grace=timedelta(minutes=runtime.settings.digest_grace_minutes),
    )
    if report.sent:
        runtime.outbox.wake()
    return report


def run_home_refresh(runtime: Runtime) -> int:
    """Re-publish recent visitors' Home boards if something changed and the last refresh (by any
    process) is at least LIAISON_HOME_REFRESH_SECONDS old; returns the boards queued."""
    interval = timedelta(seconds=runtime.settings.home_refresh_seconds)
    queued = home.refresh_if_stale(runtime.db, runtime.config, runtime.clock.now(), interval)
    if queued:
        runtime.outbox.wake()
    return queued


def run_housekeeping(runtime: Runtime) -> int:
    now = runtime.clock.now()
    with runtime.db.session() as session:
        pruned = prune(session, now - BOOKKEEPING_RETENTION) + forget_expired(session, now)
    return pruned + stored_files.prune(runtime.db, now)


def build_scheduler(runtime: Runtime) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        timezone=runtime.config.zone,
        executors={"default": ThreadPoolExecutor(), HOME_REFRESH_EXECUTOR: ThreadPoolExecutor(1)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
    )
    logging.getLogger(f"apscheduler.executors.{HOME_REFRESH_EXECUTOR}").setLevel(logging.WARNING)
    zone = runtime.config.zone
    jobs: list[tuple[str, Callable[[Runtime], object], CronTrigger, str]] = [
        # (id, what, when, what it is for); every minute, on the minute:
        (
            REMINDER_JOB,
            run_reminders,
            CronTrigger(second=0, timezone=zone),
            "remind silent countries, escalate to ops",
        ),
        # every minute, between reminder runs:
        (
            INCIDENT_TIMERS_JOB,
            run_incident_timers,
            CronTrigger(second=30, timezone=zone),
            "re-announce sev1/sev2 incidents without an owner or an update",
        ),
        # due times are computed from the database each minute (DST-exact); this is only the tick:
        (
            DIGEST_JOB,
            run_digests,
            CronTrigger(second=30, timezone=zone),
            "send the daily digests that are due",
        ),
        (
            HOUSEKEEPING_JOB,
            run_housekeeping,
            CronTrigger(minute=17, timezone=zone),
            "prune old event ids, command log, request signatures and uploaded files",
        ),
    ]
    for job_id, job, trigger, name in jobs:
        scheduler.add_job(_safely(job), trigger, args=[runtime], id=job_id, name=name, replace_existing=True)
    tick = min(HOME_REFRESH_TICK_SECONDS, runtime.settings.home_refresh_seconds)
    scheduler.add_job(
        _safely(run_home_refresh),
        IntervalTrigger(seconds=tick, timezone=zone),
        args=[runtime],
        id=HOME_REFRESH_JOB,
        name="re-publish recent visitors' Home boards after changes",
        executor=HOME_REFRESH_EXECUTOR,
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
