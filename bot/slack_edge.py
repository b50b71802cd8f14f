"""Slack's endpoint in front of Bolt: verify, then parse, then refuse replays, then dispatch.

Bolt parses a body before it checks the signature (a bad body is a 500 with a traceback) and logs
refused bodies in full. Here nothing about a request is parsed or logged before its signature and
timestamp are verified on the raw bytes; refusals are counted and logged briefly, at a bounded
rate; a verified body is checked for shape (`bot/payloads.py`) and its signature remembered for the
five-minute window, so a replayed request is not acted on twice — a slash command's in the
command's own transaction (a `replays.Guard` handed to its listener through Bolt's context), any
other request's before dispatch. Bolt then dispatches as usual (its own verification is off: it
happened here, on the runtime's clock).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from slack_bolt import App, BoltResponse
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.context import BoltContext
from slack_bolt.request import BoltRequest
from slack_bolt.request.internals import build_context

from bot import payloads
from bot.errors import is_database_busy
from storage import replays
from storage.clock import Clock
from storage.db import Database

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

log = logging.getLogger("liaison.edge")

SIGNATURE_WINDOW = timedelta(minutes=5)  # Slack's: a timestamp further from now is refused
MAX_BODY_BYTES = 1_000_000


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"

    @classmethod
    def text(cls, status: int, message: str) -> Answer:
        return cls(status, (message + "\n").encode())

    @classmethod
    def json(cls, body: object) -> Answer:
        return cls(200, json.dumps(body).encode(), "application/json; charset=utf-8")


UNAUTHORIZED = Answer.text(401, "invalid request signature")


def signature_for(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str, signature: str, body: bytes, now: float) -> str | None:
    """Why a request is not Slack's (None when it is): Slack's scheme, on the raw body bytes."""
    if not timestamp or not signature:
        return "unsigned"
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return "non-numeric timestamp"
    if abs(now - int(timestamp)) > SIGNATURE_WINDOW.total_seconds():
        return "timestamp outside the five-minute window"
    expected = signature_for(secret, timestamp, body).encode()
    if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
        return "bad signature"
    return None


@dataclass
class RefusalLog:
    """Logs refused requests without their content, at most `limit` lines per `period` seconds;
    the rest are counted and summed up in the next line (a flood writes a few lines a minute)."""

    limit: int = 10
    period: float = 60.0
    monotonic: Callable[[], float] = time.monotonic
    _window_start: float = 0.0
    _logged: int = 0
    _suppressed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def refused(self, status: int, reason: str, remote: str) -> None:
        with self._lock:
            now = self.monotonic()
            if now - self._window_start >= self.period:
                if self._suppressed:
                    log.warning("%d more requests refused in the last minute", self._suppressed)
                self._window_start, self._logged, self._suppressed = now, 0, 0
            if self._logged >= self.limit:
                self._suppressed += 1
                return
            self._logged += 1
        log.warning("refused a request from %s: HTTP %d, %s", remote or "?", status, reason)


class SlackEndpoint:
    """`POST /slack/events`: from the WSGI environment to an answer."""

    def __init__(
        self,
        app: App,
        db: Database,
        clock: Clock,
        *,
        signing_secret: str,
        refusals: RefusalLog | None = None,
    ) -> None:
        self._app = app
        self._db = db
        self._clock = clock
        self._secret = signing_secret
        self._refusals = refusals or RefusalLog()

    def handle(self, environ: WSGIEnvironment) -> Answer:
        remote = str(environ.get("REMOTE_ADDR", ""))
        raw = self._read_body(environ)
        if isinstance(raw, Answer):
            return self._refuse(raw, "body too large or of unknown length", remote)
        content_type = str(environ.get("CONTENT_TYPE", ""))
        if payloads.is_ssl_check(content_type, raw):
            return Answer(200)
        timestamp = str(environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", ""))
        signature = str(environ.get("HTTP_X_SLACK_SIGNATURE", ""))
        problem = verify(self._secret, timestamp, signature, raw, self._clock.now().timestamp())
        if problem is not None:
            return self._refuse(UNAUTHORIZED, problem, remote)
        # Verified: from here on the request is Slack's (or holds the secret); reasons may be shown.
        try:
            envelope = payloads.check(content_type, raw.decode("utf-8"))
        except UnicodeDecodeError:
            return self._refuse(Answer.text(400, "the body is not UTF-8"), "signed, not UTF-8", remote)
        except payloads.BadPayload as error:
            return self._refuse(Answer.text(400, f"malformed Slack request: {error}"), str(error), remote)
        expires_at = datetime.fromtimestamp(int(timestamp), UTC) + SIGNATURE_WINDOW
        if envelope.is_command:
            # Remembered in the command's own transaction (one commit per command); if no transaction
            # of the command took it (a refusal rolled back, the modal of `/incident`), here after.
            guard = replays.Guard(signature, expires_at)
            answer = self._dispatch(environ, raw.decode("utf-8"), envelope, guard)
            if not guard.settled:
                self._remember_after(guard, envelope)
            return answer
        seen = self._first_time(signature, expires_at, envelope)
        if seen is not None:
            return seen
        return self._dispatch(environ, raw.decode("utf-8"), envelope)

    def _read_body(self, environ: WSGIEnvironment) -> bytes | Answer:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return Answer.text(400, "bad Content-Length")
        if length < 0:
            return Answer.text(400, "bad Content-Length")
        if length > MAX_BODY_BYTES:
            return Answer.text(413, "request body too large")
        stream = environ.get("wsgi.input")
        return bytes(stream.read(length)) if stream is not None and length else b""

    def _first_time(self, signature: str, expires_at: datetime, envelope: payloads.Envelope) -> Answer | None:
        """None when the request is new; else the answer to a replay, or to a database too busy to tell."""
        try:
            # Not synced on its own: the command's durable commit syncs it along; a power cut could
            # at worst forget a signature, never an acknowledged command.
            with self._db.request_session(durable=False) as session:
                first = replays.remember(session, signature, expires_at)
        except Exception as error:
            if is_database_busy(error):
                log.warning("database busy: could not check a %s request for replay", envelope.kind)
                return Answer.text(503, "busy, try again")
            log.exception("could not check a %s request for replay", envelope.kind)
            return Answer.text(500, "internal error")
        if first:
            return None
        log.warning("refused a replayed %s request (signature already used)", envelope.kind)
        return Answer(200)

    def _remember_after(self, guard: replays.Guard, envelope: payloads.Envelope) -> None:
        """A command answered without a transaction of its own: remember its signature now."""
        try:
            with self._db.request_session(durable=False) as session:
                guard.remember_in(session)
        except replays.Replayed:
            log.warning("a %s command was replayed while the first was answered", envelope.kind)
        except Exception as error:  # the command was answered; a busy database only costs the note
            log.warning("could not remember a command's signature: %s", type(error).__name__)

    def _dispatch(
        self,
        environ: WSGIEnvironment,
        text: str,
        envelope: payloads.Envelope,
        guard: replays.Guard | None = None,
    ) -> Answer:
        wsgi = WsgiHttpRequest(environ)
        # Bolt would parse the body again, with a heuristic (a command whose text contains "payload"
        # parses as empty): it gets the body checked above instead, and the raw text it keeps.
        request = BoltRequest(body="", query=wsgi.query_string or None, headers=wsgi.get_headers())
        request.raw_body = text
        request.body = envelope.body
        request.context = build_context(BoltContext({}), envelope.body)
        if guard is not None:
            request.context[replays.GUARD_CONTEXT_KEY] = guard
        response: BoltResponse = self._app.dispatch(request)
        content_type = (response.headers.get("content-type") or ["text/plain; charset=utf-8"])[0]
        return Answer(response.status, response.body.encode(), content_type)

    def _refuse(self, answer: Answer, reason: str, remote: str) -> Answer:
        self._refusals.refused(answer.status, reason, remote)
        return answer
