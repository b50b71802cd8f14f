"""Sending the daily digests: what is due, exactly once per subscription and local day.

Every pass (the in-process scheduler each minute, or `liaison digest send-due` from cron) looks at
each active subscription for today and the week before (local dates in LIAISON_TIMEZONE), so that
every day Liaison was down is accounted for:

- not due yet, or due before the subscription existed: nothing;
- a run row exists for that subscription and date: already sent or skipped;
- due more than the grace period ago (the bot was down): a `skipped` run with the reason;
- otherwise the digest is built from one snapshot of the database (a read-only transaction, which
  on SQLite does not hold up the commands), then one short transaction inserts the run row (the
  unique (subscription, date) key: a second process, or the same one after a restart, cannot insert
  it again) and enqueues the digest, and its chart, in the outbox. A crash before the commit leaves
  nothing behind, so the next pass sends it; after the commit the outbox delivers it whatever
  happens to this process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlmodel import Session

from commands.common import CommandConfig
from commands.digest_chart import render_chart
from commands.digest_content import DigestData, gather, render
from commands.local_times import due_moment, parse_time_of_day
from storage import digests, outbox
from storage.db import Database
from storage.models import DigestRun, DigestRunStatus, DigestSubscription

log = logging.getLogger(__name__)

FIRST_DIGEST_COVERS = timedelta(hours=24)
DAYS_LOOKED_BACK = 7  # a digest missed that long ago is still recorded as skipped, with the reason
LONGEST_COVERAGE = timedelta(days=7)


@dataclass
class DueReport:
    sent: list[str] = field(default_factory=list)  # "C123 2026-07-21"
    skipped: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.sent or self.skipped)


def coverage(session: Session, subscription: DigestSubscription, now: datetime) -> digests.Window:
    """Movements are reported since the previous digest of this subscription (within a week); on
    PostgreSQL, those committed after the snapshot it read."""
    assert subscription.id is not None
    previous = digests.last_sent_run(session, subscription.id)
    if previous is not None and now - previous.claimed_at <= LONGEST_COVERAGE:
        return digests.since_run(session, previous, now)
    return digests.Window(now - FIRST_DIGEST_COVERS, now)


def build_digest(
    session: Session, config: CommandConfig, subscription: DigestSubscription, now: datetime
) -> DigestData:
    return gather(session, config, window=coverage(session, subscription, now), scope=subscription.country)


class _ChartCache:
    """One chart per view (overall, or a country) per pass; charts are drawn outside transactions."""

    def __init__(self, db: Database, config: CommandConfig, now: datetime, enabled: bool) -> None:
        self._db, self._config, self._now, self._enabled = db, config, now, enabled
        self._charts: dict[str | None, bytes | None] = {}

    def get(self, scope: str | None) -> bytes | None:
        if not self._enabled:
            return None
        if scope not in self._charts:
            try:
                with self._db.read_session() as session:
                    data = gather(
                        session, self._config, window=digests.Window(self._now, self._now), scope=scope
                    )
                self._charts[scope] = render_chart(data)
            except Exception:  # the digest goes out without its picture rather than not at all
                log.exception("could not draw the digest chart for %s", scope or "all countries")
                self._charts[scope] = None
        return self._charts[scope]


def send_due(
    db: Database, config: CommandConfig, now: datetime, *, grace: timedelta, charts: bool = True
) -> DueReport:
    report = DueReport()
    cache = _ChartCache(db, config, now, charts)
    today = now.astimezone(config.zone).date()
    days = tuple(today - timedelta(days=back) for back in range(DAYS_LOOKED_BACK, -1, -1))
    with db.read_session() as session:
        subscriptions = list(digests.active_subscriptions(session))
        done = digests.runs_on(session, [day.isoformat() for day in days])
    for subscription in subscriptions:
        for day in days:
            if (subscription.id, day.isoformat()) in done:
                continue  # the common case each minute: settled without touching the subscription
            try:
                _consider(db, config, subscription, day, now, grace, cache, report)
            except Exception:
                log.exception(
                    "digest for %s on %s failed; the next pass retries", subscription.channel_id, day
                )
    return report


def _consider(
    db: Database,
    config: CommandConfig,
    subscription: DigestSubscription,
    day: date,
    now: datetime,
    grace: timedelta,
    cache: _ChartCache,
    report: DueReport,
) -> None:
    assert subscription.id is not None
    due = due_moment(day, parse_time_of_day(subscription.local_time), config.zone)
    if due > now or due < subscription.active_since:
        return
    label = f"{subscription.channel_id} {day.isoformat()}"
    with db.read_session() as session:
        if digests.run_for(session, subscription.id, day.isoformat()) is not None:
            return
    late = now - due
    if late > grace:
        reason = (
            f"not sent: due at {subscription.local_time} ({config.zone.key}) and {_hours(late)} late "
            f"when Liaison next looked, beyond the {_hours(grace)} grace period"
        )
        with db.session() as session:
            run = _run(subscription, day, due, now, DigestRunStatus.SKIPPED, reason=reason)
            if digests.claim_run(session, run):
                log.warning("digest %s skipped: %s", label, reason)
                report.skipped.append(label)
        return
    chart = cache.get(subscription.country)
    # Read and rendered on a snapshot, outside the writer's turn: on a large ledger the reading
    # takes a while, and commands must not wait for it. Claimed and queued after, in one short
    # transaction; if another process claimed it meanwhile, this copy is dropped.
    with db.read_session() as session:
        data = build_digest(session, config, subscription, now)
        snapshot = digests.current_snapshot(session)  # the next digest reports what this one could not see
    reply = render(data, config.zone)
    with db.session() as session:
        run = _run(subscription, day, due, now, DigestRunStatus.SENT, covers_from=data.since)
        run.snapshot = snapshot
        if not digests.claim_run(session, run):
            return  # another process has it
        message = outbox.post_message(
            session, subscription.channel_id, text=reply.text, blocks=reply.blocks, now=now
        )
        run.message_id = message.id
        if late > timedelta(minutes=5):
            run.reason = f"sent {_hours(late)} late (Liaison was not running at {subscription.local_time})"
        session.add(run)
        if chart is not None:
            outbox.upload_file(
                session,
                channel=subscription.channel_id,
                filename=f"liaison-digest-{day.isoformat()}.png",
                title=f"Deployment on {day:%-d %B %Y}",
                content=chart,
                now=now,
                after=message,
            )
    report.sent.append(label)


def _run(
    subscription: DigestSubscription,
    day: date,
    due: datetime,
    now: datetime,
    status: DigestRunStatus,
    *,
    reason: str | None = None,
    covers_from: datetime | None = None,
) -> DigestRun:
    assert subscription.id is not None
    return DigestRun(
        subscription_id=subscription.id,
        local_date=day.isoformat(),
        due_at=due,
        claimed_at=now,
        status=status,
        reason=reason,
        covers_from=covers_from,
    )


def _hours(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d}"
