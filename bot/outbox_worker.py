"""Delivers the outbox to Slack: in order per lane, lanes in parallel, paced, at most once per post.

- Each message is claimed on its own with a short lease that a heartbeat renews while its call is in
  flight; only as many messages are claimed as there are free delivery slots.
- A post carries its outbox key in Slack message metadata. When its outcome is unknown (a timeout,
  a dropped connection, a 5xx, a worker that died mid-call) the channel is searched for that key
  before the post is tried again (bot.reconcile).
- Outcomes (bot.slack_errors): `ok` → sent, with Slack's ts for later edits and threads; 429 → the
  method pauses for everyone for `Retry-After`; transient errors → retried after a short, capped,
  jittered backoff; credential errors → the message waits, /healthz says degraded, ops are told once;
  permanent errors → failed and reported; unknown errors → a few tries, then failed and reported. A
  failed message never holds up its lane.
"""

from __future__ import annotations

import http.client
import logging
import math
import random
import threading
import time
import urllib.error
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlmodel import Session

from bot import outbox_jobs, reconcile
from bot.slack_errors import ErrorKind, advice_for, classify
from bot.tokens import StaticToken, TokenError, TokenSource, client_with
from bot.uploads import upload_file
from storage import files, outbox
from storage.clock import Clock
from storage.db import Database
from storage.models import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

_T = TypeVar("_T")

ISSUES_REREAD_SECONDS = 10.0  # how stale this process's view of the open service issues may be
CREDENTIALS_ISSUE = "credentials"
OPS_CHANNEL_ISSUE = "ops_channel"


@dataclass(frozen=True)
class DeliveryPolicy:
    lease: timedelta = timedelta(seconds=6)
    heartbeat: timedelta = timedelta(seconds=2)
    settle: timedelta = timedelta(seconds=5)  # wait after an uncertain post before looking it up
    lane_interval: timedelta = timedelta(seconds=1)
    retry_base: timedelta = timedelta(seconds=1)
    max_backoff: timedelta = timedelta(seconds=10)
    credential_retry: timedelta = timedelta(seconds=60)
    give_up_after: timedelta = timedelta(hours=24)  # a message kept waiting by credentials fails then
    max_unknown_errors: int = 5
    concurrency: int = 8

    def backoff(self, attempts: int, jitter: float) -> timedelta:
        exponent = min(max(attempts - 1, 0), 20)
        capped = min(self.retry_base.total_seconds() * 2**exponent, self.max_backoff.total_seconds())
        return timedelta(seconds=capped * jitter)


FailureHook = Callable[[Session, OutboxMessage, str, datetime], None]
IssueHook = Callable[[Session, str, str, datetime], None]


class _Retry(Exception):
    def __init__(
        self,
        error: str,
        *,
        kind: ErrorKind = ErrorKind.TRANSIENT,
        after: float | None = None,
        uncertain: bool = False,
        pause_method: bool = False,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.kind = kind
        self.after = after
        self.uncertain = uncertain
        self.pause_method = pause_method


class _Fail(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


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
        on_issue: IssueHook | None = None,
        ops_channel: str | None = None,
        tokens: TokenSource | None = None,
        poll_interval: float = 1.0,
        jitter: Callable[[], float] | None = None,
        jobs: Mapping[str, outbox_jobs.Prepare] | None = None,
    ) -> None:
        self._db = db
        self._jobs = outbox_jobs.jobs(exports_apart=True) if jobs is None else jobs
        self._client = client
        self._clock = clock
        self._http = http or httpx.Client(timeout=10.0)
        self._policy = policy or DeliveryPolicy()
        self._on_failure = on_failure
        self._on_issue = on_issue
        self._ops_channel = ops_channel
        self._tokens: TokenSource = tokens or StaticToken(client.token or "")
        self._poll_interval = poll_interval
        self._jitter = jitter or (lambda: random.uniform(0.5, 1.0))  # noqa: S311 (not for secrets)
        self._executor = ThreadPoolExecutor(self._policy.concurrency, thread_name_prefix="liaison-outbox")
        self._in_flight: dict[str, OutboxMessage] = {}  # claim token → message
        self._lock = threading.Lock()
        self._clients: dict[str, WebClient] = {}
        self._last_beat = 0.0
        self._known_issues: set[str] = set()
        self._issues_read_at = -math.inf
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

    def stop(self, timeout: float = 20.0) -> None:
        """Stop claiming; calls in flight finish (and are recorded) first."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._executor.shutdown(wait=True, cancel_futures=True)

    def wake(self) -> None:
        """Something was enqueued: look now rather than at the next poll."""
        self._wake.set()

    def _loop(self) -> None:
        idle_wait = min(self._poll_interval, self._policy.heartbeat.total_seconds())
        while not self._stop.is_set():
            self._wake.clear()
            claimed = 0
            try:
                free = self._policy.concurrency - len(self._in_flight)
                for message in self._claim(free) if free > 0 else []:
                    claimed += 1
                    future = self._executor.submit(self._deliver_tracked, message)
                    future.add_done_callback(lambda _f: self._wake.set())
                self._heartbeat_if_due()
            except Exception:
                log.exception("outbox delivery round failed; retrying at the next poll")
            if claimed == 0:
                self._wake.wait(idle_wait)

    # -- one round (tests, the shell, `liaison` one-shot commands) --------------------------------

    def run_once(self) -> int:
        """Claim what is due, deliver it (lanes in parallel) and wait; returns messages attempted."""
        batch = self._claim(self._policy.concurrency)
        futures = [self._executor.submit(self._deliver_tracked, message) for message in batch]
        self._wait(futures)
        return len(batch)

    def drain(self, max_rounds: int = 1000) -> int:
        """Deliver until nothing is due now; returns messages attempted."""
        total = 0
        for _ in range(max_rounds):
            attempted = self.run_once()
            if attempted == 0:
                break
            total += attempted
        return total

    def _wait(self, futures: Iterable[Future[None]]) -> None:
        pending = set(futures)
        while pending:
            _done, pending = wait(pending, timeout=self._policy.heartbeat.total_seconds())
            self._heartbeat_if_due()

    # -- claims and heartbeats --------------------------------------------------------------------

    def _claim(self, limit: int) -> list[OutboxMessage]:
        policy = self._policy
        with self._db.session() as session:
            return outbox.claim_due(
                session,
                now=self._clock.now(),
                lease=policy.lease,
                settle=policy.settle,
                lane_interval=policy.lane_interval,
                limit=limit,
            )

    def _heartbeat_if_due(self) -> None:
        if time.monotonic() - self._last_beat < self._policy.heartbeat.total_seconds():
            return
        self._last_beat = time.monotonic()
        with self._lock:
            tokens = list(self._in_flight)
        if tokens:
            with self._db.session() as session:
                outbox.renew(session, tokens, until=self._clock.now() + self._policy.lease)

    def _deliver_tracked(self, message: OutboxMessage) -> None:
        assert message.claim_token is not None
        with self._lock:
            self._in_flight[message.claim_token] = message
        try:
            self._deliver(message)
        except Exception:
            log.exception("outbox message %s: delivery bookkeeping failed; its lease will lapse", message.id)
        finally:
            with self._lock:
                self._in_flight.pop(message.claim_token, None)

    # -- one message ------------------------------------------------------------------------------

    def _deliver(self, message: OutboxMessage) -> None:
        job = self._jobs.get(message.method)
        if job is not None:
            self._run_job(message, job)
            return
        token = ""
        try:
            token = self._tokens.current()
            channel, ts = self._call(message, self._client_for(token))
        except TokenError as error:
            self._retry(message, _Retry(f"token_refresh_failed: {error}", kind=ErrorKind.CREDENTIALS))
        except _Retry as retry:
            if retry.error == "token_expired" and self._tokens.expired(token):
                retry = _Retry("token_expired", after=0.0)  # renewed: try again at once
            self._retry(message, retry)
        except _Fail as failure:
            self._fail(message, failure.error)
        except Exception as error:  # a bug or an unexpected library error: a few more tries, then fail
            log.exception("outbox message %s: unexpected error", message.id)
            self._retry(message, _Retry(f"unexpected: {type(error).__name__}", kind=ErrorKind.UNKNOWN))
        else:
            self._sent(message, channel, ts)

    def _run_job(self, message: OutboxMessage, prepare: outbox_jobs.Prepare) -> None:
        """A job of ours, not a Slack call: prepared outside any transaction (its lease renewed
        meanwhile), finished in the transaction that marks it done, or not at all."""
        try:
            finish = prepare(self._db, outbox.payload_of(message), self._clock.now())
        except Exception as error:
            log.exception("outbox job %s (%s) failed", message.id, message.method)
            self._retry(message, _Retry(f"unexpected: {type(error).__name__}", kind=ErrorKind.UNKNOWN))
            return
        with self._db.session() as session:
            now = self._clock.now()
            if not outbox.mark_sent(session, message, now=now, channel=None, ts=None):
                log.warning(
                    "outbox job %s: claim lost before it finished; its new holder does it", message.id
                )
                return
            finish(session, now)
        self.wake()  # what it queued is due now

    def _sent(self, message: OutboxMessage, channel: str | None, ts: str | None) -> None:
        with self._db.session() as session:
            if not outbox.mark_sent(session, message, now=self._clock.now(), channel=channel, ts=ts):
                log.warning("outbox message %s: claim lost before it was marked sent", message.id)
            self._clear_issues_after_success(session, message)

    def _retry(self, message: OutboxMessage, retry: _Retry) -> None:
        now = self._clock.now()
        policy = self._policy
        if retry.kind is ErrorKind.UNKNOWN and message.unknown_errors + 1 >= policy.max_unknown_errors:
            self._fail(message, retry.error)
            return
        if retry.kind is ErrorKind.CREDENTIALS and now - message.created_at > policy.give_up_after:
            self._fail(message, retry.error)
            return
        if retry.after is not None:
            at = now + timedelta(seconds=retry.after)
        elif retry.kind is ErrorKind.CREDENTIALS:
            at = now + policy.credential_retry
        else:
            at = now + policy.backoff(message.attempts, self._jitter())
        if retry.uncertain:
            at = max(at, now + policy.settle)
        log.info("outbox message %s (%s): %s; retrying at %s", message.id, message.method, retry.error, at)
        with self._db.session() as session:
            outbox.mark_retry(
                session,
                message,
                at=at,
                error=retry.error,
                uncertain_since=now if retry.uncertain else None,
                unknown_error=retry.kind is ErrorKind.UNKNOWN,
            )
            if retry.pause_method:
                outbox.pause_method(session, message.method, until=at)
            if retry.kind is ErrorKind.CREDENTIALS:
                self._raise_issue(session, CREDENTIALS_ISSUE, retry.error, now)

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
        self._issues_changed()  # reporting it may have noted an issue

    def _raise_issue(self, session: Session, key: str, error: str, now: datetime) -> None:
        code = error.split(":", 1)[0]
        detail = f"{error} — {advice_for(code)}"
        self._issues_changed()
        if outbox.record_issue(session, key, detail, now=now):
            log.error("Slack delivery is degraded: %s", detail)
            if self._on_issue is not None:
                self._on_issue(session, key, detail, now)

    def _clear_issues_after_success(self, session: Session, message: OutboxMessage) -> None:
        """A call that worked proves the token works (and the ops channel, if it went there)."""
        keys = {CREDENTIALS_ISSUE}
        if message.lane == self._ops_channel:
            keys.add(OPS_CHANNEL_ISSUE)
        with self._lock:
            if time.monotonic() - self._issues_read_at >= ISSUES_REREAD_SECONDS:
                self._issues_read_at = time.monotonic()
                self._known_issues = {issue.key for issue in outbox.issues(session)}
            present = keys & self._known_issues
            self._known_issues -= present
        for key in present:
            if outbox.clear_issue(session, key):
                log.warning("Slack delivery recovered: %s cleared", key)

    def _issues_changed(self) -> None:
        with self._lock:
            self._issues_read_at = -math.inf

    # -- the Web API calls ------------------------------------------------------------------------

    def _client_for(self, token: str) -> WebClient:
        client = self._clients.get(token)
        if client is None:
            client = client_with(self._client, token=token)
            self._clients = {token: client}  # the previous token is done with
        return client

    def _call(self, message: OutboxMessage, client: WebClient) -> tuple[str | None, str | None]:
        payload = outbox.payload_of(message)
        if message.method == outbox.RESPONSE_URL:
            return self._post_response_url(payload)
        if message.method == outbox.POST_MESSAGE:
            return self._post(message, payload, client)
        if message.method == outbox.UPDATE_MESSAGE:
            assert message.refers_to_id is not None
            channel, ts = self._delivered(message.refers_to_id)
            return _slack(lambda: client.chat_update(channel=channel, ts=ts, **payload))
        if message.method == outbox.PUBLISH_VIEW:
            return _slack(lambda: client.views_publish(**payload))
        if message.method == outbox.UPLOAD_FILE:
            if message.refers_to_id is not None:  # the message the file belongs to goes first
                payload["thread_ts"] = self._delivered(message.refers_to_id)[1]
            content = self._upload_content(payload)
            return _slack(lambda: upload_file(client, payload, content))
        raise _Fail(f"unknown outbox method {message.method}")

    def _upload_content(self, payload: dict[str, Any]) -> bytes:
        # Read from a snapshot: a large stored file never holds the writer's turn (SQLite).
        try:
            with self._db.read_session() as session:
                return outbox.upload_content(session, payload)
        except files.MissingFile as error:
            raise _Fail(f"file_missing: {error}") from None

    def _post(
        self, message: OutboxMessage, payload: dict[str, Any], client: WebClient
    ) -> tuple[str | None, str | None]:
        if message.refers_to_id is not None:
            payload["thread_ts"] = self._delivered(message.refers_to_id)[1]
        if message.uncertain_since is not None and message.idem_key:
            found = self._find_posted(message, payload, client)
            if found is not None:
                log.info(
                    "outbox message %s was posted after all (ts %s); not posting again", message.id, found
                )
                return str(payload["channel"]), found
        if message.idem_key:
            payload["metadata"] = reconcile.metadata_for(message.idem_key)
        return _slack(lambda: client.chat_postMessage(**payload), may_have_acted=True)

    def _find_posted(self, message: OutboxMessage, payload: dict[str, Any], client: WebClient) -> str | None:
        assert message.uncertain_since is not None
        assert message.idem_key is not None
        try:
            return _slack_value(
                lambda: reconcile.find_posted(
                    client,
                    channel=str(payload["channel"]),
                    key=message.idem_key or "",
                    thread_ts=payload.get("thread_ts"),
                    since=message.uncertain_since or self._clock.now(),
                )
            )
        except reconcile.HistoryTooLong as error:
            raise _Fail(f"delivery uncertain: could not check the channel ({error})") from error
        except _Retry as retry:
            if retry.error == "missing_scope":
                with self._db.session() as session:
                    self._raise_issue(session, "missing_scope:history", "missing_scope", self._clock.now())
                raise _Fail(
                    "delivery uncertain: Liaison may not read the channel's history (missing_scope "
                    "channels:history/groups:history) to check whether the message arrived"
                ) from retry
            raise

    def _delivered(self, message_id: int) -> tuple[str, str]:
        """The channel and ts of a message we posted earlier (to edit it or reply in its thread)."""
        with self._db.session() as session:
            original = outbox.get(session, message_id)
        if original is None or original.status in (OutboxStatus.FAILED, OutboxStatus.SUPERSEDED):
            raise _Fail("the original message was never delivered")
        if original.slack_ts is None or original.slack_channel is None:
            raise _Retry("waiting for the original message to be delivered")
        return original.slack_channel, original.slack_ts

    def _post_response_url(self, payload: dict[str, Any]) -> tuple[str | None, str | None]:
        try:
            response = self._http.post(payload["url"], json=payload["body"])
        except httpx.HTTPError as error:
            raise _Retry(f"network: {error}") from error
        if response.status_code == 429:
            raise _Retry("ratelimited", after=_retry_after(response.headers))
        if response.status_code >= 500:
            raise _Retry(f"http {response.status_code}")
        if response.status_code >= 400:
            # Expired (more than 30 minutes or 5 uses) or invalid: no retry can make it work.
            raise _Fail(f"response_url refused: http {response.status_code}")
        return None, None


def _slack(call: Callable[[], Any], *, may_have_acted: bool = False) -> tuple[str | None, str | None]:
    response = _slack_value(call, may_have_acted=may_have_acted)
    data = response.data if isinstance(response.data, dict) else {}
    return data.get("channel"), data.get("ts")


def _slack_value(call: Callable[[], _T], *, may_have_acted: bool = False) -> _T:
    """Run a Web API call, turning every way it can go wrong into _Retry or _Fail."""
    try:
        return call()
    except SlackApiError as error:
        raise _from_api_error(error, may_have_acted) from error
    except urllib.error.URLError as error:
        # Raised while connecting or sending: Slack never got the whole request.
        raise _Retry(f"network: {error.reason}") from error
    except (OSError, http.client.HTTPException) as error:
        # The request left; the answer did not arrive (timeout, reset): Slack may have acted on it.
        raise _Retry(f"network: {type(error).__name__}: {error}", uncertain=may_have_acted) from error


def _from_api_error(error: SlackApiError, may_have_acted: bool) -> Exception:
    response = error.response
    status = int(getattr(response, "status_code", 0) or 0)
    data = response.data if isinstance(getattr(response, "data", None), dict) else {}
    code = str(data.get("error") or f"http {status}")
    if status == 429 or code in ("ratelimited", "rate_limited"):
        after = _retry_after(getattr(response, "headers", {}) or {})
        return _Retry("ratelimited", after=after, pause_method=True)
    kind = classify(code, status)
    if kind is ErrorKind.TRANSIENT:
        # A 503 was refused at the door; other 5xx may come after Slack acted.
        return _Retry(code, uncertain=may_have_acted and status >= 500 and status != 503)
    if kind is ErrorKind.PERMANENT:
        return _Fail(code)
    return _Retry(code, kind=kind)


def _retry_after(headers: Mapping[str, Any]) -> float:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(float(raw), 0.0)
            except (TypeError, ValueError):
                break
    return 1.0
