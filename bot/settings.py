"""Configuration from the environment (pydantic-settings). Secrets never appear in repr or logs."""

from __future__ import annotations

import re
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SLACK_API_URL_DEFAULT = "https://slack.com/api/"


def _env(name: str, field: str) -> AliasChoices:
    return AliasChoices(name, field)


class ConfigurationError(RuntimeError):
    """The environment is missing something the requested mode needs; the message says what."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias=_env("SLACK_SIGNING_SECRET", "slack_signing_secret")
    )
    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias=_env("SLACK_BOT_TOKEN", "slack_bot_token")
    )
    slack_app_token: SecretStr | None = Field(
        default=None, validation_alias=_env("SLACK_APP_TOKEN", "slack_app_token")
    )
    slack_client_id: str | None = Field(
        default=None, validation_alias=_env("SLACK_CLIENT_ID", "slack_client_id")
    )
    slack_client_secret: SecretStr | None = Field(
        default=None, validation_alias=_env("SLACK_CLIENT_SECRET", "slack_client_secret")
    )
    slack_refresh_token: SecretStr | None = Field(
        default=None, validation_alias=_env("SLACK_REFRESH_TOKEN", "slack_refresh_token")
    )
    slack_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        le=120,
        validation_alias=_env("LIAISON_SLACK_TIMEOUT_SECONDS", "slack_timeout_seconds"),
    )
    slack_api_url: str = Field(
        default=SLACK_API_URL_DEFAULT, validation_alias=_env("SLACK_API_URL", "slack_api_url")
    )
    database_url: str = Field(
        default="sqlite:///liaison.db", repr=False, validation_alias=_env("DATABASE_URL", "database_url")
    )
    timezone: str = Field(default="Europe/Paris", validation_alias=_env("LIAISON_TIMEZONE", "timezone"))
    admins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("LIAISON_ADMINS", "admins")
    )
    capabilities: str | None = Field(
        default=None, validation_alias=_env("LIAISON_CAPABILITIES", "capabilities")
    )
    ops_channel: str | None = Field(default=None, validation_alias=_env("LIAISON_OPS_CHANNEL", "ops_channel"))
    ack_remind_minutes: int = Field(
        default=15,
        ge=1,
        le=24 * 60,
        validation_alias=_env("LIAISON_ACK_REMIND_MINUTES", "ack_remind_minutes"),
    )
    alert_levels: str | None = Field(
        default=None, validation_alias=_env("LIAISON_ALERT_LEVELS", "alert_levels")
    )
    max_per_entry: int = Field(
        default=5000, ge=1, le=100_000, validation_alias=_env("LIAISON_MAX_PER_ENTRY", "max_per_entry")
    )
    undo_minutes: int = Field(
        default=15, ge=1, le=24 * 60, validation_alias=_env("LIAISON_UNDO_MINUTES", "undo_minutes")
    )
    duplicate_window_seconds: int = Field(
        default=120,
        ge=0,
        le=3600,
        validation_alias=_env("LIAISON_DUPLICATE_WINDOW_SECONDS", "duplicate_window_seconds"),
    )
    listener_threads: int = Field(
        default=16, ge=1, le=256, validation_alias=_env("LIAISON_LISTENER_THREADS", "listener_threads")
    )
    # None: 16 on SQLite (requests queue for its one writer: more threads, bigger commit groups), 6 on
    # PostgreSQL (each thread waits on the server in turn; more of them only fight over the GIL).
    http_threads: int | None = Field(
        default=None, ge=1, le=256, validation_alias=_env("LIAISON_HTTP_THREADS", "http_threads")
    )
    outbox_poll_seconds: float = Field(
        default=1.0, gt=0, le=60, validation_alias=_env("LIAISON_OUTBOX_POLL_SECONDS", "outbox_poll_seconds")
    )
    outbox_channel_interval_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        validation_alias=_env("LIAISON_OUTBOX_CHANNEL_INTERVAL_SECONDS", "outbox_channel_interval_seconds"),
    )
    outbox_concurrency: int = Field(
        default=8, ge=1, le=64, validation_alias=_env("LIAISON_OUTBOX_CONCURRENCY", "outbox_concurrency")
    )
    outbox_lease_seconds: float = Field(
        default=6.0,
        ge=1,
        le=300,
        validation_alias=_env("LIAISON_OUTBOX_LEASE_SECONDS", "outbox_lease_seconds"),
    )
    outbox_settle_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        validation_alias=_env("LIAISON_OUTBOX_SETTLE_SECONDS", "outbox_settle_seconds"),
    )
    outbox_retry_base_seconds: float = Field(
        default=1.0,
        gt=0,
        le=600,
        validation_alias=_env("LIAISON_OUTBOX_RETRY_BASE_SECONDS", "outbox_retry_base_seconds"),
    )
    outbox_max_backoff_seconds: float = Field(
        default=10.0,
        gt=0,
        validation_alias=_env("LIAISON_OUTBOX_MAX_BACKOFF_SECONDS", "outbox_max_backoff_seconds"),
    )
    scheduler: bool = Field(
        default=True, validation_alias=_env("LIAISON_SCHEDULER", "scheduler")
    )  # off: no in-process scheduled jobs (web-only processes; digests then via `liaison digest send-due`)
    # off: exports are built on the outbox worker's thread rather than in a process of their own
    # (bot/outbox_jobs.py), where they slow every command of the process while they run.
    export_process: bool = Field(
        default=True, validation_alias=_env("LIAISON_EXPORT_PROCESS", "export_process")
    )
    # `liaison serve` keeps each process on one CPU of its own (bot/cpu.py); off: where the system puts it.
    pin_cpu: bool = Field(default=True, validation_alias=_env("LIAISON_PIN_CPU", "pin_cpu"))
    digest_grace_minutes: int = Field(
        default=180,
        ge=0,
        le=24 * 60,
        validation_alias=_env("LIAISON_DIGEST_GRACE_MINUTES", "digest_grace_minutes"),
    )
    home_refresh_seconds: float = Field(
        default=5.0,
        ge=0.5,
        le=300,
        validation_alias=_env("LIAISON_HOME_REFRESH_SECONDS", "home_refresh_seconds"),
    )  # recent visitors' Home boards are re-published at most this often after changes

    escalation_channel: str | None = Field(
        default=None, validation_alias=_env("LIAISON_ESCALATION_CHANNEL", "escalation_channel")
    )
    oncall_group: str | None = Field(
        default=None, validation_alias=_env("LIAISON_ONCALL_GROUP", "oncall_group")
    )
    incident_owner_minutes: int = Field(
        default=10,
        ge=1,
        le=24 * 60,
        validation_alias=_env("LIAISON_INCIDENT_OWNER_MINUTES", "incident_owner_minutes"),
    )
    incident_update_minutes: int = Field(
        default=30,
        ge=1,
        le=24 * 60,
        validation_alias=_env("LIAISON_INCIDENT_UPDATE_MINUTES", "incident_update_minutes"),
    )

    @field_validator("oncall_group")
    @classmethod
    def _user_group_id(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not re.fullmatch(r"S[A-Z0-9]{2,30}", value):
            raise ValueError("LIAISON_ONCALL_GROUP must be a Slack user-group id such as S0123ABCD")
        return value

    http_channel_timeout_seconds: int = Field(
        default=15,
        ge=1,
        le=600,
        validation_alias=_env("LIAISON_HTTP_CHANNEL_TIMEOUT_SECONDS", "http_channel_timeout_seconds"),
    )
    http_connection_limit: int = Field(
        default=500,
        ge=10,
        le=10_000,
        validation_alias=_env("LIAISON_HTTP_CONNECTION_LIMIT", "http_connection_limit"),
    )

    @field_validator("admins", mode="before")
    @classmethod
    def _split_admins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Paris)") from error
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("SLACK_API_URL must be an http(s) URL, e.g. https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def token_rotation(self) -> bool:
        """Slack token rotation: the bot token is renewed with the refresh token before it expires."""
        return _given(self.slack_refresh_token)

    def require_slack_credentials(self, *, socket_mode: bool = False) -> tuple[str | None, str]:
        """The signing secret (None in Socket Mode, which does not sign) and the bot token (empty
        when rotation will fetch one), or a ConfigurationError naming what is missing."""
        needed: list[tuple[str, SecretStr | str | None]] = [
            ("SLACK_APP_TOKEN", self.slack_app_token)
            if socket_mode
            else ("SLACK_SIGNING_SECRET", self.slack_signing_secret)
        ]
        if self.token_rotation:
            needed += [
                ("SLACK_CLIENT_ID", self.slack_client_id),
                ("SLACK_CLIENT_SECRET", self.slack_client_secret),
            ]
        else:
            needed.append(("SLACK_BOT_TOKEN", self.slack_bot_token))
        missing = [name for name, value in needed if not _given(value)]
        if missing:
            where = (
                "Basic Information → App-Level Tokens (an xapp- token with connections:write)"
                if socket_mode
                else "Basic Information → Signing Secret"
            )
            raise ConfigurationError(
                f"{' and '.join(missing)} must be set to serve Slack "
                f"(find them in your Slack app's settings: {where}, "
                "OAuth & Permissions → Bot User OAuth Token). "
                "To try Liaison without Slack, run `liaison shell --demo`."
            )
        token = self.slack_bot_token.get_secret_value() if self.slack_bot_token is not None else ""
        if socket_mode:
            return None, token
        assert self.slack_signing_secret is not None
        return self.slack_signing_secret.get_secret_value(), token


def _given(value: SecretStr | str | None) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return bool(value and value.strip())
