"""The tables. Ledgers are append-only: corrections are new rows, never edits of old ones."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, LargeBinary, SmallInteger, String, Text, UniqueConstraint, false
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime


class MovementKind(StrEnum):
    ARRIVAL = "arrival"
    DEPARTURE = "departure"


class Movement(SQLModel, table=True):
    """N personnel of one country arriving or leaving. An undo is a row with the opposite count."""

    __tablename__ = "movement"
    __table_args__ = (
        Index("ix_movement_recorded_by_created", "recorded_by", "created_at"),
        # A country's rows in time order: its latest movement is one seek (the digest's "last heard").
        Index("ix_movement_country_created", "country", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    country: str = Field(max_length=2)
    kind: MovementKind = Field(sa_type=String(16))
    count: int
    capability: str | None = Field(default=None, max_length=40)
    location: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, max_length=500)
    recorded_by: str = Field(max_length=32)
    channel_id: str = Field(max_length=32)
    command_text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    reverses_id: int | None = Field(default=None, foreign_key="movement.id", unique=True)


class Pledge(SQLModel, table=True):
    """A country's commitment for one capability; the latest row per (country, capability) is current."""

    __tablename__ = "pledge"
    __table_args__ = (Index("ix_pledge_country_capability", "country", "capability"),)

    id: int | None = Field(default=None, primary_key=True)
    country: str = Field(max_length=2)
    capability: str | None = Field(default=None, max_length=40)
    headcount: int
    recorded_by: str = Field(max_length=32)
    channel_id: str = Field(max_length=32)
    command_text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_type=UTCDateTime)


class DeploymentTotal(SQLModel, table=True):
    """What the ledgers add up to for one country and capability (`""`: recorded without one), updated
    in the same transaction as each ledger row (storage.totals); `liaison doctor` checks it. Split
    over a few shards (summed when read) so that concurrent movements of one country do not all wait
    on one row until each commits (PostgreSQL); a pledge is kept on shard 0."""

    __tablename__ = "deployment_total"

    country: str = Field(primary_key=True, max_length=2)
    capability: str = Field(primary_key=True, max_length=40)
    shard: int = Field(default=0, primary_key=True, sa_type=SmallInteger)
    pledged: int = 0
    arrived: int = 0
    departed: int = 0


class CommandLog(SQLModel, table=True):
    """Recording commands as typed, to recognise a command retyped after a Slack timeout."""

    __tablename__ = "command_log"
    __table_args__ = (Index("ix_command_log_user_created", "user_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(max_length=32)
    channel_id: str = Field(max_length=32)
    command: str = Field(max_length=40)
    normalized_text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_type=UTCDateTime)


class PendingCommand(SQLModel, table=True):
    """A probable duplicate awaiting the user's choice: record again, or discard."""

    __tablename__ = "pending_command"

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(max_length=32)
    user_name: str = Field(default="", max_length=80)
    channel_id: str = Field(max_length=32)
    team_id: str = Field(default="", max_length=32)
    command: str = Field(max_length=40)
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolution: str | None = Field(default=None, max_length=16)


class ProcessedEvent(SQLModel, table=True):
    """Events API deliveries already handled, keyed on Slack's event_id (Slack retries deliveries)."""

    __tablename__ = "processed_event"

    event_id: str = Field(primary_key=True, max_length=64)
    received_at: datetime = Field(sa_type=UTCDateTime)


class SeenRequest(SQLModel, table=True):
    """A signed Slack request already accepted, remembered while its signature could be replayed."""

    __tablename__ = "seen_request"

    signature: str = Field(primary_key=True, max_length=80)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SUPERSEDED = "superseded"  # an edit or Home publish replaced by a newer one before it was sent


class OutboxMessage(SQLModel, table=True):
    """A Web API call owed to Slack, written in the same transaction as the change it reports.

    Messages in one lane (a channel, a user's Home tab, a response URL) are delivered in id order.
    A claim is a short lease (`lease_until`) held under `claim_token` and renewed by the delivering
    worker's heartbeat; `uncertain_since` marks a post whose outcome is unknown (a timeout, a worker
    that died mid-call): it is looked up in the channel (by `idem_key` in the message metadata)
    before it is ever posted again.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_due", "status", "next_attempt_at"),
        Index("ix_outbox_lane_id", "lane", "id"),
        Index("ix_outbox_refers_to", "refers_to_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    method: str = Field(max_length=40)
    lane: str = Field(max_length=80)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    refers_to_id: int | None = Field(default=None, foreign_key="outbox.id")  # edited or threaded under
    status: OutboxStatus = Field(default=OutboxStatus.PENDING, sa_type=String(16))
    priority: int = Field(default=0)
    purpose: str | None = Field(default=None, max_length=40)
    idem_key: str | None = Field(default=None, max_length=32)
    attempts: int = 0
    unknown_errors: int = 0
    created_at: datetime = Field(sa_type=UTCDateTime)
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claim_token: str | None = Field(default=None, max_length=32)
    uncertain_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)
    slack_channel: str | None = Field(default=None, max_length=32)
    slack_ts: str | None = Field(default=None, max_length=32)


class StoredFile(SQLModel, table=True):
    """The content of a file to upload that is too large for an outbox row (an export), kept in
    parts (`FilePart`) each written in a short transaction of its own: no transaction, and so no
    turn of SQLite's one writer, carries megabytes. `upload_id`: the upload queued for it; the file
    is pruned once that upload is done (storage.files.prune)."""

    __tablename__ = "stored_file"

    key: str = Field(primary_key=True, max_length=32)
    size: int
    parts: int
    created_at: datetime = Field(sa_type=UTCDateTime)
    upload_id: int | None = Field(default=None, foreign_key="outbox.id", index=True)


class FilePart(SQLModel, table=True):
    __tablename__ = "file_part"

    file_key: str = Field(primary_key=True, foreign_key="stored_file.key", max_length=32)
    part: int = Field(primary_key=True)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class SlackMethodPause(SQLModel, table=True):
    """Slack answered 429 for a Web API method: nobody calls it again before `until` (all processes)."""

    __tablename__ = "slack_method_pause"

    method: str = Field(primary_key=True, max_length=40)
    until: datetime = Field(sa_type=UTCDateTime)


class ServiceIssue(SQLModel, table=True):
    """A problem the whole installation has (bad credentials, an unreachable ops channel): shown by
    /healthz as `degraded`, told to ops once, cleared when it is gone."""

    __tablename__ = "service_issue"

    key: str = Field(primary_key=True, max_length=40)
    detail: str = Field(max_length=500)
    since: datetime = Field(sa_type=UTCDateTime)


class SlackToken(SQLModel, table=True):
    """The rotating bot token (Slack token rotation), shared by every process through the database."""

    __tablename__ = "slack_token"

    id: int = Field(default=1, primary_key=True)
    access_token: str = Field(sa_column=Column(Text, nullable=False))
    refresh_token: str = Field(sa_column=Column(Text, nullable=False))
    expires_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class ScheduledRun(SQLModel, table=True):
    """One row per job and due time: the process that inserts it is the one that runs it."""

    __tablename__ = "scheduled_run"
    __table_args__ = (UniqueConstraint("job", "due_at", name="uq_scheduled_run_job_due"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=120)
    due_at: datetime = Field(sa_type=UTCDateTime)
    claimed_at: datetime = Field(sa_type=UTCDateTime)


class Role(StrEnum):
    ADMIN = "admin"
    OPS = "ops"


class UserRole(SQLModel, table=True):
    """A role granted in Slack (`/liaison role`); admins from LIAISON_ADMINS need no row."""

    __tablename__ = "user_role"

    user_id: str = Field(primary_key=True, max_length=32)
    role: Role = Field(sa_type=String(16))
    granted_by: str = Field(max_length=32)
    granted_at: datetime = Field(sa_type=UTCDateTime)


class LiaisonAssignment(SQLModel, table=True):
    """A user is a liaison officer for a country (one user may serve several countries)."""

    __tablename__ = "liaison_assignment"
    __table_args__ = (UniqueConstraint("user_id", "country", name="uq_liaison_user_country"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(max_length=32, index=True)
    country: str = Field(max_length=2, index=True)
    assigned_by: str = Field(max_length=32)
    assigned_at: datetime = Field(sa_type=UTCDateTime)


class ChannelLink(SQLModel, table=True):
    """A Slack channel is a country's liaison channel: notices go there."""

    __tablename__ = "channel_link"

    channel_id: str = Field(primary_key=True, max_length=32)
    country: str = Field(max_length=2, index=True)
    linked_by: str = Field(max_length=32)
    linked_at: datetime = Field(sa_type=UTCDateTime)


class AlertNotice(SQLModel, table=True):
    """A change of the alert level; the latest notice holds the current level."""

    __tablename__ = "alert_notice"

    id: int | None = Field(default=None, primary_key=True)
    level: str = Field(max_length=40)
    previous_level: str = Field(max_length=40)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    set_by: str = Field(max_length=32)
    created_at: datetime = Field(sa_type=UTCDateTime)
    ops_message_id: int | None = Field(default=None, foreign_key="outbox.id")


class NoticeDelivery(SQLModel, table=True):
    """A notice sent to one linked channel, with the reminder and escalation state of its country."""

    __tablename__ = "notice_delivery"
    __table_args__ = (UniqueConstraint("notice_id", "channel_id", name="uq_notice_delivery_channel"),)

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="alert_notice.id", index=True)
    country: str = Field(max_length=2)
    channel_id: str = Field(max_length=32)
    message_id: int = Field(foreign_key="outbox.id")
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Acknowledgement(SQLModel, table=True):
    """One acknowledgement per country and notice, whoever clicked first. `on_behalf`: given by ops or
    an admin who is not one of the country's liaison officers, and shown as such."""

    __tablename__ = "acknowledgement"
    __table_args__ = (UniqueConstraint("notice_id", "country", name="uq_ack_notice_country"),)

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="alert_notice.id", index=True)
    country: str = Field(max_length=2)
    user_id: str = Field(max_length=32)
    channel_id: str = Field(max_length=32)
    created_at: datetime = Field(sa_type=UTCDateTime)
    on_behalf: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class IncidentStatus(StrEnum):
    OPEN = "open"
    OWNED = "owned"
    RESOLVED = "resolved"


class Incident(SQLModel, table=True):
    """An incident (`INC-<id>`). `version` grows with every change: a button carries the version
    its card showed, so a press on an out-of-date card is recognised. The `*_due_at` columns are
    the escalation timers, claimed by compare-and-set so each lapse is announced once."""

    __tablename__ = "incident"
    __table_args__ = (Index("ix_incident_status_severity", "status", "severity"),)

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=150)
    description: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    severity: int
    status: IncidentStatus = Field(sa_type=String(16))
    channel_id: str = Field(max_length=32)
    owner: str | None = Field(default=None, max_length=32, index=True)
    countries: str = Field(default="", max_length=200)  # ISO alpha-2 codes, comma-separated
    opened_by: str = Field(max_length=32)
    opened_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    version: int = 1
    card_message_id: int | None = Field(default=None, foreign_key="outbox.id")
    card_permalink: str | None = Field(default=None, max_length=500)
    source_channel: str | None = Field(default=None, max_length=32)
    source_ts: str | None = Field(default=None, max_length=32)
    source_permalink: str | None = Field(default=None, max_length=500)
    owner_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    update_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


class IncidentEvent(SQLModel, table=True):
    """One line of an incident's timeline, in the order the changes were committed."""

    __tablename__ = "incident_event"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    kind: str = Field(max_length=24)
    actor: str = Field(default="", max_length=32)  # empty: Liaison itself (a timer)
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_type=UTCDateTime)


class DigestSubscription(SQLModel, table=True):
    """A channel (or a DM with the bot) gets a daily digest at a local time; one per channel.

    Unsubscribing keeps the row inactive so that subscribing again the same day cannot send twice.
    """

    __tablename__ = "digest_subscription"

    id: int | None = Field(default=None, primary_key=True)
    channel_id: str = Field(max_length=32, unique=True)
    country: str | None = Field(default=None, max_length=2)  # None: the overall view
    local_time: str = Field(max_length=5)  # "07:00", in LIAISON_TIMEZONE
    active: bool = True
    active_since: datetime = Field(sa_type=UTCDateTime)  # no digest is owed for a moment before this
    created_by: str = Field(max_length=32)
    created_at: datetime = Field(sa_type=UTCDateTime)


class DigestRunStatus(StrEnum):
    SENT = "sent"
    SKIPPED = "skipped"


class DigestRun(SQLModel, table=True):
    """One row per subscription and local day, inserted in the transaction that enqueues the digest:
    the unique constraint makes exactly one process (or one restart) send it."""

    __tablename__ = "digest_run"
    __table_args__ = (UniqueConstraint("subscription_id", "local_date", name="uq_digest_run_day"),)

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="digest_subscription.id", index=True)
    local_date: str = Field(max_length=10)  # ISO date in LIAISON_TIMEZONE
    due_at: datetime = Field(sa_type=UTCDateTime)
    claimed_at: datetime = Field(sa_type=UTCDateTime)
    status: DigestRunStatus = Field(sa_type=String(16))
    reason: str | None = Field(default=None, max_length=300)
    covers_from: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # PostgreSQL: the snapshot the digest was read on (`pg_snapshot` text); the next one reports the
    # rows committed after it (storage.digests.Window).
    snapshot: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    message_id: int | None = Field(default=None, foreign_key="outbox.id")


class HomeVisit(SQLModel, table=True):
    """When a user last opened the Home tab: only recent visitors get their board refreshed."""

    __tablename__ = "home_visit"

    user_id: str = Field(primary_key=True, max_length=32)
    opened_at: datetime = Field(sa_type=UTCDateTime, index=True)


class HomeBoardChange(SQLModel, table=True):
    """Something shown on the Home board changed: a row inserted in that change's own transaction
    (insert-only, so busy commands never wait on each other for it). The Home refresher deletes the
    rows it saw, in the transaction that enqueues the refreshed boards."""

    __tablename__ = "home_board_change"

    id: int | None = Field(default=None, primary_key=True)
    changed_at: datetime = Field(sa_type=UTCDateTime)


class HomeRefresh(SQLModel, table=True):
    """When recent visitors' boards were last refreshed (one row, id 1): claimed by an update that
    only matches once the refresh interval has passed, so one process refreshes per interval."""

    __tablename__ = "home_refresh"

    id: int = Field(default=1, primary_key=True)
    refreshed_at: datetime = Field(sa_type=UTCDateTime)


# Columns the database keeps that the models leave unmapped: on PostgreSQL each ledger row's
# `txid` (`xid8`, defaulting to `pg_current_xact_id()`, migration 0014) tells in which snapshots
# it is visible — the digest's window (storage.digests.Window). No model field: the ORM never
# writes them and SQLite has no such type.
SERVER_KEPT_COLUMNS = frozenset({("movement", "txid"), ("pledge", "txid")})


def is_modelled(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Alembic's `include_object`: schema comparisons skip SERVER_KEPT_COLUMNS."""
    table = getattr(getattr(obj, "table", None), "name", None)
    return not (type_ == "column" and (table, name) in SERVER_KEPT_COLUMNS)
