"""The parts a running Liaison is made of, built once from the settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from slack_sdk import WebClient

from bot import outbox_jobs
from bot.delivery_failures import report_failures_to, report_issues_to
from bot.outbox_worker import DeliveryPolicy, OutboxWorker
from bot.settings import Settings
from bot.tokens import RotatingToken, StaticToken, TokenSource
from commands.alert_levels import AlertScale, default_scale
from commands.capabilities import CapabilityVocabulary, default_vocabulary
from commands.common import CommandConfig
from commands.incident_feed import tracked_incidents
from storage.clock import Clock, SystemClock
from storage.db import Database

log = logging.getLogger(__name__)


def command_config(settings: Settings) -> CommandConfig:
    vocabulary = (
        CapabilityVocabulary.from_spec(settings.capabilities)
        if settings.capabilities
        else default_vocabulary()
    )
    return CommandConfig(
        zone=settings.zone,
        vocabulary=vocabulary,
        max_per_entry=settings.max_per_entry,
        undo_window=timedelta(minutes=settings.undo_minutes),
        duplicate_window=timedelta(seconds=settings.duplicate_window_seconds),
        admins=frozenset(settings.admins),
        ops_channel=settings.ops_channel or None,
        alert_scale=AlertScale.from_spec(settings.alert_levels) if settings.alert_levels else default_scale(),
        ack_remind=timedelta(minutes=settings.ack_remind_minutes),
        escalation_channel=settings.escalation_channel or None,
        oncall_group=settings.oncall_group,
        incident_owner_timeout=timedelta(minutes=settings.incident_owner_minutes),
        incident_update_timeout=timedelta(minutes=settings.incident_update_minutes),
        incidents=tracked_incidents,
    )


def build_web_client(settings: Settings, token: str | None) -> WebClient:
    """Slack's Web API at the configured base URL. No automatic retries here: a retried
    chat.postMessage after a lost response would post twice; the outbox retries instead."""
    return WebClient(
        token=token or None,
        base_url=settings.slack_api_url,
        timeout=int(settings.slack_timeout_seconds),
        retry_handlers=[],
    )


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    lease = timedelta(seconds=settings.outbox_lease_seconds)
    return DeliveryPolicy(
        lease=lease,
        heartbeat=lease / 3,
        settle=timedelta(seconds=settings.outbox_settle_seconds),
        lane_interval=timedelta(seconds=settings.outbox_channel_interval_seconds),
        retry_base=timedelta(seconds=settings.outbox_retry_base_seconds),
        max_backoff=timedelta(seconds=settings.outbox_max_backoff_seconds),
        concurrency=settings.outbox_concurrency,
    )


def token_source(settings: Settings, db: Database, clock: Clock, token: str) -> TokenSource:
    if not settings.token_rotation:
        return StaticToken(token)
    assert settings.slack_refresh_token is not None
    assert settings.slack_client_secret is not None
    return RotatingToken(
        db,
        clock,
        build_web_client(settings, None),
        client_id=settings.slack_client_id or "",
        client_secret=settings.slack_client_secret.get_secret_value(),
        refresh_token=settings.slack_refresh_token.get_secret_value(),
        access_token=token or None,
    )


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock
    config: CommandConfig
    client: WebClient
    outbox: OutboxWorker
    tokens: TokenSource
    extras: dict[str, object] = field(default_factory=dict)

    def close(self) -> None:
        self.outbox.stop()
        self.db.dispose()


def build_runtime(
    settings: Settings,
    *,
    token: str,
    clock: Clock | None = None,
    db: Database | None = None,
    client: WebClient | None = None,
    http: httpx.Client | None = None,
) -> Runtime:
    clock = clock or SystemClock()
    db = db or Database.from_url(settings.database_url)
    client = client or build_web_client(settings, token)
    config = command_config(settings)
    tokens = token_source(settings, db, clock, token)
    worker = OutboxWorker(
        db,
        client,
        clock,
        http=http,
        policy=delivery_policy(settings),
        poll_interval=settings.outbox_poll_seconds,
        on_failure=report_failures_to(config.ops_channel),
        on_issue=report_issues_to(config.ops_channel),
        ops_channel=config.ops_channel,
        tokens=tokens,
        jobs=outbox_jobs.jobs(exports_apart=settings.export_process),
    )
    return Runtime(
        settings=settings, db=db, clock=clock, config=config, client=client, outbox=worker, tokens=tokens
    )
