"""Delivers the outbox to Slack: in order per lane, paced, retried until Slack accepts, never twice.

Outcomes: `ok` → sent (with Slack's ts, so later edits target the same message); 429 → retried after
`Retry-After`; 5xx, timeouts and network errors → retried with exponential backoff, without limit;
errors that can never succeed (`channel_not_found`, `not_in_channel`, ...) → failed, recorded and
reported through `on_failure`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlmodel import Session

from bot.uploads import upload_file
from storage import outbox
from storage.clock import Clock
from storage.db import Database
from storage.models import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "msg_too_long",
        "invalid_blocks",
        "invalid_blocks_format",
        "no_text",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "user_not_found",
        "invalid_arguments",
        "too_many_attachments",
        "duplicate_channel_not_found",
    }
)
# Errors that will not fix themselves but concern the whole installation; retried slowly so that
# fixing the token or scopes resumes delivery without losing anything.
CREDENTIAL_ERRORS = frozenset(
    {"not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired", "missing_scope"}
)
MAX_UNKNOWN_ERROR_ATTEMPTS = 8


class _Retry(Exception):
    def __init__(self, error: str, after: float | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.after = after


class _Permanent(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass(frozen=True)
class DeliveryPolicy:
    lease: timedelta = timedelta(seconds=60)
    lane_interval: timedelta = timedelta(seconds=1)
    retry_base: timedelta = timedelta(seconds=2)
    max_backoff: timedelta = timedelta(minutes=5)
    batch_size: int = 20

    def backoff(self, attempts: int) -> timedelta:
        exponent = max(attempts - 1, 0)
        seconds = self.retry_base.total_seconds() * (2 ** min(exponent, 20))
        return min(timedelta(seconds=seconds), self.max_backoff)


FailureHook = Callable[[Session, OutboxMessage, str, datetime], None]


class OutboxWorker:
    def __init__(
        self,
        db: Database,
        client: WebClient,
        clock: Clock,
        *,
        http: httpx.Client | None = None,
        policy: DeliveryPolicy | None = None,
        on_failure: FailureHook | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        self._db = db
        self._client = client
        self._clock = clock
        self._http = http or httpx.Client(timeout=10.0)
        self._policy = policy or DeliveryPolicy()
        self._on_failure = on_failure
        self._poll_interval = poll_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the loop ---------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="liaison-outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        """Something was enqueued: look now rather than at the next poll."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                delivered = self.run_once()
            except Exception:
                log.exception("outbox delivery round failed; retrying at the next poll")
                delivered = 0
            if delivered == 0:
                self._wake.wait(self._poll_interval)
                self._wake.clear()

    # -- one round --------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Claim what is due and deliver it; returns how many messages were attempted."""
        policy = self._policy
        with self._db.session() as session:
            batch = outbox.claim_due(
                session,
                now=self._clock.now(),
                lease=policy.lease,
                lane_interval=policy.lane_interval,
                limit=policy.batch_size,
            )
        for message in batch:
            self._deliver(message)
        return len(batch)

    def drain(self, max_rounds: int = 1000) -> int:
        """Deliver until nothing is due now (tests and the shell); returns messages attempted."""
        total = 0
        for _ in range(max_rounds):
            attempted = self.run_once()
            if attempted == 0:
                break
            total += attempted
        return total

    def _deliver(self, message: OutboxMessage) -> None:
        try:
            channel, ts = self._call(message)
        except _Retry as retry:
            self._retry(message, retry)
        except _Permanent as failure:
            self._fail(message, failure.error)
        except Exception as error:  # a bug or an unexpected library error: keep the message, retry
            log.exception("outbox message %s: unexpected error", message.id)
            self._retry(message, _Retry(f"unexpected: {type(error).__name__}"))
        else:
            with self._db.session() as session:
                if not outbox.mark_sent(session, message, now=self._clock.now(), channel=channel, ts=ts):
                    log.warning("outbox message %s: lease lost before it was marked sent", message.id)

    def _retry(self, message: OutboxMessage, retry: _Retry) -> None:
        now = self._clock.now()
        if retry.after is not None:
            at = now + timedelta(seconds=retry.after)
        else:
            at = now + self._policy.backoff(message.attempts)
        log.info("outbox message %s (%s): %s; retrying at %s", message.id, message.method, retry.error, at)
        with self._db.session() as session:
            outbox.mark_retry(session, message, at=at, error=retry.error)

    def _fail(self, message: OutboxMessage, error: str) -> None:
        now = self._clock.now()
        log.warning(
            "outbox message %s (%s to %s) failed for good: %s",
            message.id,
            message.method,
            message.lane,
            error,
        )
        with self._db.session() as session:
            if outbox.mark_failed(session, message, now=now, error=error) and self._on_failure is not None:
                self._on_failure(session, message, error, now)

    # -- the Web API calls ------------------------------------------------------------------------

    def _call(self, message: OutboxMessage) -> tuple[str | None, str | None]:
        payload = outbox.payload_of(message)
        if message.method == outbox.RESPONSE_URL:
            return self._post_response_url(payload)
        if message.method == outbox.POST_MESSAGE:
            if message.refers_to_id is not None:
                payload["thread_ts"] = self._delivered(message.refers_to_id)[1]
            return self._slack(lambda: self._client.chat_postMessage(**payload))
        if message.method == outbox.UPDATE_MESSAGE:
            assert message.refers_to_id is not None
            channel, ts = self._delivered(message.refers_to_id)
            return self._slack(lambda: self._client.chat_update(channel=channel, ts=ts, **payload))
        if message.method == outbox.PUBLISH_VIEW:
            return self._slack(lambda: self._client.views_publish(**payload))
        if message.method == outbox.UPLOAD_FILE:
            if message.refers_to_id is not None:  # the message the file belongs to goes first
                payload["thread_ts"] = self._delivered(message.refers_to_id)[1]
            return self._slack(lambda: upload_file(self._client, payload))
        raise _Permanent(f"unknown outbox method {message.method}")

    def _delivered(self, message_id: int) -> tuple[str, str]:
        """The channel and ts of a message we posted earlier (to edit it or reply in its thread)."""
        with self._db.session() as session:
            original = outbox.get(session, message_id)
        if original is None or original.status == OutboxStatus.FAILED:
            raise _Permanent("the original message was never delivered")
        if original.slack_ts is None or original.slack_channel is None:
            raise _Retry("waiting for the original message to be delivered")
        return original.slack_channel, original.slack_ts

    def _slack(self, call: Callable[[], Any]) -> tuple[str | None, str | None]:
        try:
            response = call()
        except SlackApiError as error:
            raise _classify(error) from error
        except (OSError, TimeoutError) as error:  # urllib's URLError is an OSError
            raise _Retry(f"network: {error}") from error
        data = response.data if isinstance(response.data, dict) else {}
        return data.get("channel"), data.get("ts")

    def _post_response_url(self, payload: dict[str, Any]) -> tuple[str | None, str | None]:
        try:
            response = self._http.post(payload["url"], json=payload["body"])
        except httpx.HTTPError as error:
            raise _Retry(f"network: {error}") from error
        if response.status_code == 429:
            raise _Retry("ratelimited", _retry_after(response.headers))
        if response.status_code >= 500:
            raise _Retry(f"http {response.status_code}")
        if response.status_code >= 400:
            # Expired (more than 30 minutes or 5 uses) or invalid: no retry can make it work.
            raise _Permanent(f"response_url refused: http {response.status_code}")
        return None, None


def _retry_after(headers: Mapping[str, Any]) -> float:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(float(raw), 0.0)
            except (TypeError, ValueError):
                break
    return 1.0


def _classify(error: SlackApiError) -> Exception:
    response = error.response
    status = getattr(response, "status_code", 0)
    data = response.data if isinstance(getattr(response, "data", None), dict) else {}
    code = str(data.get("error") or f"http {status}")
    if status == 429 or code == "ratelimited":
        return _Retry("ratelimited", _retry_after(getattr(response, "headers", {}) or {}))
    if status >= 500 or code in ("internal_error", "fatal_error", "service_unavailable", "request_timeout"):
        return _Retry(code)
    if code in PERMANENT_ERRORS:
        return _Permanent(code)
    if code in CREDENTIAL_ERRORS:
        return _Retry(code, after=300.0)
    return _Retry(code)
