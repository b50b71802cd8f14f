"""The bot token: fixed (SLACK_BOT_TOKEN), or rotating (Slack token rotation, a single workspace).

With rotation on, Slack's bot tokens expire after 12 hours and are renewed with `oauth.v2.access`
(`grant_type=refresh_token`), which also hands out a new refresh token. Every process shares one
token row in the database; the process that refreshes holds that row's lock while it does, so two
processes never spend the same refresh token, and the others read the new token from the row.
"""

from __future__ import annotations

import copy
import logging
import threading
from datetime import datetime, timedelta
from typing import Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from storage.clock import Clock
from storage.db import Database
from storage.models import SlackToken

log = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=10)  # refresh this long before the token expires
CACHE_FOR = timedelta(seconds=30)  # re-read the shared row at most this often


def client_with(template: WebClient, *, token: str, timeout: int | None = None) -> WebClient:
    """`template` (its base URL, logger, no retries; a subclass such as the shell's stays one) with
    `token` — the current one, which rotation may have renewed — and, if given, another timeout."""
    if token == template.token and timeout in (None, template.timeout):
        return template
    client = copy.copy(template)
    client.token = token or template.token
    if timeout is not None:
        client.timeout = timeout
    return client


class TokenError(RuntimeError):
    """The token could not be renewed; the message says what to fix."""


class TokenSource(Protocol):
    def current(self) -> str:
        """A token that is valid now (refreshed first if it is about to expire)."""
        ...

    def expired(self, token: str) -> bool:
        """Slack said `token_expired` for `token`: renew it; True when a new token is available."""
        ...


class StaticToken:
    def __init__(self, token: str) -> None:
        self._token = token

    def current(self) -> str:
        return self._token

    def expired(self, token: str) -> bool:
        return False


class RotatingToken:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        client: WebClient,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        access_token: str | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._client = client
        self._client_id = client_id
        self._client_secret = client_secret
        self._seed_refresh = refresh_token
        self._seed_access = access_token
        self._lock = threading.Lock()
        self._cached: tuple[str, datetime, datetime] | None = None  # token, expires, read at

    def current(self) -> str:
        now = self._clock.now()
        with self._lock:
            cached = self._cached
            if cached is not None and cached[1] - now > REFRESH_MARGIN and now - cached[2] < CACHE_FOR:
                return cached[0]
            return self._renew_if_needed(now, force_past=None)

    def expired(self, token: str) -> bool:
        now = self._clock.now()
        with self._lock:
            try:
                return self._renew_if_needed(now, force_past=token) != token
            except TokenError:
                log.exception("could not renew the expired bot token")
                return False

    def _renew_if_needed(self, now: datetime, *, force_past: str | None) -> str:
        self._seed(now)
        with self._db.session() as session:
            row = _locked_row(session)
            assert row is not None
            stale = row.expires_at - now <= REFRESH_MARGIN or not row.access_token
            if stale or row.access_token == force_past:
                self._refresh(row, now)
                session.add(row)
            token, expires = row.access_token, row.expires_at
        self._cached = (token, expires, now)
        return token

    def _seed(self, now: datetime) -> None:
        """The first start: the token row from the environment (a later start keeps the row's)."""
        if self._cached is not None:
            return
        try:
            with self._db.session() as session:
                if session.get(SlackToken, 1) is None:
                    session.add(
                        SlackToken(
                            access_token=self._seed_access or "",
                            refresh_token=self._seed_refresh,
                            # Unknown expiry for a seeded access token: renew at once, and learn it.
                            expires_at=now,
                            updated_at=now,
                        )
                    )
        except IntegrityError:
            pass  # another process seeded it first

    def _refresh(self, row: SlackToken, now: datetime) -> None:
        try:
            response = self._client.oauth_v2_access(
                client_id=self._client_id,
                client_secret=self._client_secret,
                grant_type="refresh_token",
                refresh_token=row.refresh_token,
            )
        except SlackApiError as error:
            code = error.response.get("error") if isinstance(error.response.data, dict) else None
            raise TokenError(
                f"Slack refused to renew the bot token ({code or error.response.status_code}); "
                "check SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and SLACK_REFRESH_TOKEN "
                "(a refresh token already spent elsewhere cannot be reused: reinstall the app)"
            ) from error
        except OSError as error:
            raise TokenError(f"could not reach Slack to renew the bot token: {error}") from error
        row.access_token = str(response["access_token"])
        row.refresh_token = str(response.get("refresh_token") or row.refresh_token)
        row.expires_at = now + timedelta(seconds=int(response.get("expires_in") or 43_200))
        row.updated_at = now
        log.info("bot token renewed; it expires at %s", row.expires_at.isoformat())


def _locked_row(session: Session) -> SlackToken | None:
    query = select(SlackToken).where(SlackToken.id == 1)  # type: ignore[arg-type]
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # SQLite: BEGIN IMMEDIATE already serialises writers
    return session.execute(query).scalars().first()
