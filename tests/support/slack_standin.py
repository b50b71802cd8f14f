"""A local, Slack-compatible Web API stand-in for end-to-end tests.

The bot reaches Slack only through a configurable base URL, so tests point it at
``SlackStandIn().base_url`` and then inspect what it sent::

    with SlackStandIn() as slack:
        client = WebClient(token="xoxb-test", base_url=slack.base_url)
        client.chat_postMessage(channel="C1", text="hi")
        assert slack.messages("C1")[0]["text"] == "hi"

It answers ``POST /api/<method>`` like Slack does (JSON or form-encoded bodies, token in
``Authorization: Bearer``), records every call in order, serves ``response_url`` endpoints under
``/response/<token>``, and can be scripted to fail (HTTP 429 with ``Retry-After``, HTTP 500, or
``{"ok": false, "error": ...}``).

Like Slack it keeps each channel's messages (with their ``metadata``) and answers
``conversations.history`` and ``conversations.replies`` from them; it can be made slow (``delay``:
the call is carried out at once, the answer comes late, as when Slack answers after the client gave
up), drop the connection after acting (``drop``), enforce tokens and rotate them
(``rotate_tokens``: ``oauth.v2.access`` with ``grant_type=refresh_token``; ``expire_token``,
``revoke_token``), and reports the most calls it had in flight at once (``max_in_flight``).
"""

from __future__ import annotations

import base64
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TEAM_ID = "T0001"
TEAM_NAME = "Liaison Test"
TEAM_DOMAIN = "liaison-test"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
BOT_USER_NAME = "liaison"

RESPONSE_URL_METHOD = "response_url"
"""``Call.method`` prefix (``response_url:<token>``) and ``fail()`` method name for response URLs."""

_JSON_ENCODED_PARAMS = frozenset({"blocks", "attachments", "view", "metadata"})
_TS_STEP_MICROS = 100

Params = dict[str, Any]
Answer = tuple[int, dict[str, str], Params]
Responder = Callable[[Params], Params]


@dataclass(frozen=True)
class Call:
    """One request received by the stand-in.

    ``headers`` keys are lower-cased. ``status`` is the HTTP status returned and ``error`` the
    Slack error code returned (``None`` for a successful call).
    """

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    at: float
    status: int = 200
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None

    @property
    def channel(self) -> str | None:
        channel = self.params.get("channel")
        return channel if isinstance(channel, str) else None

    @property
    def token(self) -> str | None:
        auth = self.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            return auth.removeprefix("Bearer ")
        token = self.params.get("token")
        return token if isinstance(token, str) else None

    def describe(self) -> str:
        outcome = "ok" if self.ok else f"FAILED status={self.status} error={self.error}"
        return f"{self.method} channel={self.channel} [{outcome}] {_summarize(self.params)}"


@dataclass(frozen=True)
class UploadedFile:
    """A file uploaded the files_upload_v2 way and shared into ``channel``."""

    file_id: str
    filename: str
    title: str
    channel: str | None
    content: bytes | None
    initial_comment: str | None = None
    thread_ts: str | None = None


@dataclass
class _ScriptedFailure:
    method: str | None
    status: int
    remaining: int
    retry_after: int | None
    error: str | None
    channel: str | None

    def matches(self, method: str, params: Params) -> bool:
        return _method_matches(self.method, method) and (
            self.channel is None or params.get("channel") == self.channel
        )

    def answer(self) -> Answer:
        if self.status == 429:
            retry_after = self.retry_after if self.retry_after is not None else 1
            return 429, {"Retry-After": str(retry_after)}, {"ok": False, "error": "ratelimited"}
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        default_error = "internal_error" if self.status >= 500 else "request_failed"
        return self.status, headers, {"ok": False, "error": self.error or default_error}


@dataclass
class _ScriptedDelay:
    method: str | None
    channel: str | None
    seconds: float
    remaining: int | None  # None: until cleared
    drop: bool = False

    def matches(self, method: str, params: Params) -> bool:
        return _method_matches(self.method, method) and (
            self.channel is None or params.get("channel") == self.channel
        )


@dataclass
class _Rotation:
    client_id: str
    client_secret: str
    refresh_token: str
    expires_in: int
    issued: int = 0


@dataclass
class _State:
    calls: list[Call] = field(default_factory=list)
    failures: list[_ScriptedFailure] = field(default_factory=list)
    channel_errors: dict[str, str] = field(default_factory=dict)
    responders: dict[str, Responder] = field(default_factory=dict)
    history: dict[str, list[Params]] = field(default_factory=dict)  # channel → messages, oldest first
    delays: list[_ScriptedDelay] = field(default_factory=list)
    valid_tokens: set[str] | None = None  # None: any token is accepted
    expired_tokens: set[str] = field(default_factory=set)
    revoked_tokens: set[str] = field(default_factory=set)
    rotation: _Rotation | None = None
    in_flight: int = 0
    max_in_flight: int = 0
    uploads: dict[str, bytes] = field(default_factory=dict)  # file id -> bytes POSTed to its upload_url
    upload_names: dict[str, Params] = field(default_factory=dict)  # file id -> getUploadURLExternal params


class SlackStandIn:
    """Threaded HTTP server on 127.0.0.1 that imitates Slack's Web API. Use as a context manager."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._state = _State()
        self._last_ts_micros = 0
        self._view_counter = itertools.count(1)
        self._file_counter = itertools.count(1)
        self._server: _StandInServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> SlackStandIn:
        if self._server is not None:
            raise RuntimeError("SlackStandIn is already running")
        server = _StandInServer(("127.0.0.1", 0), _Handler)
        server.standin = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="slack-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> SlackStandIn:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("SlackStandIn is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What ``slack_sdk.WebClient(base_url=...)`` takes."""
        return f"{self.root_url}/api/"

    def response_url(self, token: str) -> str:
        return f"{self.root_url}/response/{token}"

    # -- scripting -----------------------------------------------------------------------------

    def fail(
        self,
        method: str | None = None,
        *,
        status: int = 500,
        times: int = 1,
        retry_after: int | None = None,
        error: str | None = None,
        channel: str | None = None,
    ) -> None:
        """Queue ``times`` failures for calls matching ``method`` (None = any) and ``channel``.

        ``status=429`` answers ``ratelimited`` with a ``Retry-After`` header (default 1 s);
        ``status=500`` a server error; ``status=200`` with ``error`` a ``{"ok": false}`` answer.
        Use ``method="response_url"`` to fail response URL posts. Failures are consumed in order.
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        if status == 200 and not error:
            raise ValueError("status=200 failures need an error code, e.g. error='channel_not_found'")
        failure = _ScriptedFailure(method, status, times, retry_after, error, channel)
        with self._lock:
            self._state.failures.append(failure)

    def set_channel_error(self, channel: str, error: str | None) -> None:
        """Answer every call about ``channel`` with ``{"ok": false, "error": error}`` until cleared."""
        with self._lock:
            if error is None:
                self._state.channel_errors.pop(channel, None)
            else:
                self._state.channel_errors[channel] = error

    def clear_channel_error(self, channel: str) -> None:
        self.set_channel_error(channel, None)

    def delay(
        self,
        seconds: float,
        method: str | None = None,
        *,
        channel: str | None = None,
        times: int | None = None,
        drop: bool = False,
    ) -> None:
        """Carry out matching calls at once but answer ``seconds`` later (``times``: how many calls,
        None until ``clear_delays``). ``drop=True`` closes the connection instead of answering."""
        with self._lock:
            self._state.delays.append(_ScriptedDelay(method, channel, seconds, times, drop))

    def drop(self, method: str | None = None, *, channel: str | None = None, times: int = 1) -> None:
        """Carry out matching calls, then close the connection without an answer."""
        self.delay(0.0, method, channel=channel, times=times, drop=True)

    def clear_delays(self) -> None:
        with self._lock:
            self._state.delays.clear()

    def rotate_tokens(
        self, *, client_id: str, client_secret: str, refresh_token: str, expires_in: int = 43_200
    ) -> None:
        """Token rotation is on: only tokens issued by ``oauth.v2.access`` are valid."""
        with self._lock:
            self._state.rotation = _Rotation(client_id, client_secret, refresh_token, expires_in)
            self._state.valid_tokens = set()

    def accept_tokens(self, *tokens: str) -> None:
        """Only these tokens (and those issued later by rotation) are valid."""
        with self._lock:
            self._state.valid_tokens = {*(self._state.valid_tokens or set()), *tokens}

    def expire_token(self, token: str) -> None:
        with self._lock:
            self._state.expired_tokens.add(token)

    def revoke_token(self, token: str) -> None:
        with self._lock:
            self._state.revoked_tokens.add(token)

    def restore_token(self, token: str) -> None:
        """Undo ``expire_token``/``revoke_token`` (an admin fixed the installation)."""
        with self._lock:
            self._state.expired_tokens.discard(token)
            self._state.revoked_tokens.discard(token)

    def set_response(self, method: str, responder: Responder | Mapping[str, Any]) -> None:
        """Override the default answer for ``method`` (a fixed body, or a function of the params)."""
        handler: Responder = responder if callable(responder) else _constant(dict(responder))
        with self._lock:
            self._state.responders[method] = handler

    def clear(self) -> None:
        """Forget recorded calls (scripted failures, channel errors and overrides stay)."""
        with self._lock:
            self._state.calls.clear()

    def reset(self) -> None:
        """Forget recorded calls, pending failures, channel errors and response overrides."""
        with self._lock:
            self._state = _State()

    # -- queries -------------------------------------------------------------------------------

    def calls(
        self, method: str | None = None, channel: str | None = None, *, include_failed: bool = False
    ) -> list[Call]:
        """Recorded calls in arrival order; only successful ones unless ``include_failed``."""
        with self._lock:
            recorded = list(self._state.calls)
        return [
            call
            for call in recorded
            if (include_failed or call.ok)
            and _method_matches(method, call.method)
            and (channel is None or call.channel == channel)
        ]

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Params of the successful ``chat.postMessage`` calls to ``channel``."""
        return [call.params for call in self.calls("chat.postMessage", channel)]

    def posted(self, channel: str) -> list[dict[str, Any]]:
        """The messages ``channel`` holds now (as Slack stores them), oldest first; includes posts
        whose answer was delayed or dropped."""
        with self._lock:
            return [dict(message) for message in self._state.history.get(channel, [])]

    @property
    def max_in_flight(self) -> int:
        """The most calls this stand-in was answering at the same time."""
        with self._lock:
            return self._state.max_in_flight

    @property
    def issued_tokens(self) -> int:
        with self._lock:
            return 0 if self._state.rotation is None else self._state.rotation.issued

    def uploaded_files(self, channel: str | None = None) -> list[UploadedFile]:
        """Files shared by ``files.completeUploadExternal``, with the bytes POSTed to their upload URL."""
        shared: list[UploadedFile] = []
        with self._lock:
            uploads = dict(self._state.uploads)
            names = dict(self._state.upload_names)
        for call in self.calls("files.completeUploadExternal"):
            entries = call.params.get("files")
            if isinstance(entries, str):
                entries = json.loads(entries)
            for entry in entries or []:
                file_id = str(entry.get("id"))
                target = call.params.get("channel_id") or call.params.get("channels")
                if channel is not None and target != channel:
                    continue
                shared.append(
                    UploadedFile(
                        file_id=file_id,
                        filename=str(names.get(file_id, {}).get("filename", "")),
                        title=str(entry.get("title") or ""),
                        channel=str(target) if target else None,
                        content=uploads.get(file_id),
                        initial_comment=call.params.get("initial_comment"),
                        thread_ts=call.params.get("thread_ts"),
                    )
                )
        return shared

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Block until ``predicate()`` holds; re-checked whenever a call is recorded."""
        with self._changed:
            if self._changed.wait_for(predicate, timeout=timeout):
                return
        raise AssertionError(f"condition not met within {timeout:g} s\n{self.dump()}")

    def wait_for_calls(
        self, method: str, count: int, channel: str | None = None, timeout: float = 10.0
    ) -> list[Call]:
        """Wait until at least ``count`` successful ``method`` calls (to ``channel``) were recorded."""
        try:
            self.wait_for(lambda: len(self.calls(method, channel)) >= count, timeout=timeout)
        except AssertionError as exc:
            where = f" to {channel}" if channel else ""
            raise AssertionError(f"expected {count} successful {method} call(s){where}; {exc}") from None
        return self.calls(method, channel)

    def dump(self) -> str:
        recorded = self.calls(include_failed=True)
        if not recorded:
            return "no Slack calls recorded"
        lines = [f"  {index}. {call.describe()}" for index, call in enumerate(recorded, 1)]
        return "recorded Slack calls:\n" + "\n".join(lines)

    # -- request handling (called from server threads) -----------------------------------------

    def _handle(
        self, method: str, params: Params, headers: dict[str, str]
    ) -> tuple[Answer, _ScriptedDelay | None]:
        with self._changed:
            status, extra_headers, body = self._answer(method, params, headers)
            error = None if body.get("ok") else str(body.get("error"))
            call = Call(method, params, headers, time.time(), status, error)
            self._state.calls.append(call)
            delay = self._take_delay(method, params)
            self._changed.notify_all()
        return (status, extra_headers, body), delay

    def _take_delay(self, method: str, params: Params) -> _ScriptedDelay | None:
        for delay in self._state.delays:
            if delay.matches(method, params):
                if delay.remaining is not None:
                    delay.remaining -= 1
                    if delay.remaining <= 0:
                        self._state.delays.remove(delay)
                return delay
        return None

    def _enter(self) -> None:
        with self._lock:
            self._state.in_flight += 1
            self._state.max_in_flight = max(self._state.max_in_flight, self._state.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._state.in_flight -= 1

    def _answer(self, method: str, params: Params, headers: dict[str, str]) -> Answer:
        failure = self._take_failure(method, params)
        if failure is not None:
            return failure.answer()
        channel_error = self._state.channel_errors.get(str(params.get("channel")))
        if channel_error is not None:
            return 200, {}, {"ok": False, "error": channel_error}
        if method.startswith(RESPONSE_URL_METHOD + ":"):
            return 200, {}, {"ok": True}
        if method == "oauth.v2.access":
            return 200, {}, self._oauth_v2_access(params, headers)
        token_error = self._token_error(headers, params)
        if token_error is not None:
            return 200, {}, {"ok": False, "error": token_error}
        return 200, {}, self._default_answer(method, params)

    def _token_error(self, headers: dict[str, str], params: Params) -> str | None:
        auth = headers.get("authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else params.get("token")
        if not token:
            return "not_authed"
        state = self._state
        if token in state.revoked_tokens:
            return "token_revoked"
        if token in state.expired_tokens:
            return "token_expired"
        if state.valid_tokens is not None and token not in state.valid_tokens:
            return "invalid_auth"
        return None

    def _oauth_v2_access(self, params: Params, headers: dict[str, str]) -> Params:
        rotation = self._state.rotation
        client_id, client_secret = _basic_auth(headers)
        client_id = client_id or str(params.get("client_id", ""))
        client_secret = client_secret or str(params.get("client_secret", ""))
        if rotation is None or (client_id, client_secret) != (rotation.client_id, rotation.client_secret):
            return {"ok": False, "error": "invalid_client_id" if rotation else "invalid_code"}
        if params.get("grant_type") != "refresh_token":
            return {"ok": False, "error": "invalid_grant_type"}
        if params.get("refresh_token") != rotation.refresh_token:
            return {"ok": False, "error": "invalid_refresh_token"}
        rotation.issued += 1
        access = f"xoxe.xoxb-1-rotated-{rotation.issued}"
        rotation.refresh_token = f"xoxe-1-refresh-{rotation.issued}"  # the old one is spent
        assert self._state.valid_tokens is not None
        self._state.valid_tokens.add(access)
        return {
            "ok": True,
            "app_id": "A123456",
            "access_token": access,
            "expires_in": rotation.expires_in,
            "refresh_token": rotation.refresh_token,
            "token_type": "bot",
            "scope": "commands,chat:write",
            "bot_user_id": BOT_USER_ID,
            "team": {"id": TEAM_ID, "name": TEAM_NAME},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def _take_failure(self, method: str, params: Params) -> _ScriptedFailure | None:
        for failure in self._state.failures:
            if failure.matches(method, params):
                failure.remaining -= 1
                if failure.remaining == 0:
                    self._state.failures.remove(failure)
                return failure
        return None

    def _default_answer(self, method: str, params: Params) -> Params:
        responder = self._state.responders.get(method)
        if responder is not None:
            return responder(params)
        builder = _DEFAULT_ANSWERS.get(method)
        return builder(self, params) if builder is not None else {"ok": True}

    def _next_ts(self) -> str:
        """Like Slack's: the server's time in microseconds, unique and increasing."""
        micros = max(int(time.time() * 1_000_000), self._last_ts_micros + _TS_STEP_MICROS)
        self._last_ts_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    # -- default answers -----------------------------------------------------------------------

    def _auth_test(self, params: Params) -> Params:
        return {
            "ok": True,
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": TEAM_NAME,
            "user": BOT_USER_NAME,
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _post_message(self, params: Params) -> Params:
        ts = self._next_ts()
        message = _message(params, ts)
        channel = str(params.get("channel"))
        thread_ts = params.get("thread_ts")
        history = self._state.history.setdefault(channel, [])
        if thread_ts:
            parent = next((m for m in history if m["ts"] == thread_ts), None)
            if parent is None:
                return {"ok": False, "error": "thread_not_found"}
            parent["reply_count"] = int(parent.get("reply_count", 0)) + 1
        history.append(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _history(self, params: Params) -> Params:
        return self._page(params, lambda m: not m.get("thread_ts") or m.get("thread_ts") == m["ts"], True)

    def _replies(self, params: Params) -> Params:
        ts = params.get("ts")
        channel = str(params.get("channel"))
        if not any(m["ts"] == ts for m in self._state.history.get(channel, [])):
            return {"ok": False, "error": "thread_not_found"}
        return self._page(params, lambda m: m["ts"] == ts or m.get("thread_ts") == ts, False)

    def _page(self, params: Params, keep: Callable[[Params], bool], newest_first: bool) -> Params:
        """A page of a channel's messages as conversations.history/replies return them."""
        channel = str(params.get("channel"))
        if channel not in self._state.history and not channel.startswith(("C", "G", "D")):
            return {"ok": False, "error": "channel_not_found"}
        oldest = float(params.get("oldest") or 0)
        limit = int(params.get("limit") or 100)
        offset = int(params.get("cursor") or 0)
        with_metadata = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
        selected = [m for m in self._state.history.get(channel, []) if keep(m) and float(m["ts"]) >= oldest]
        if newest_first:
            selected.reverse()
        page = selected[offset : offset + limit]
        more = offset + limit < len(selected)
        messages = [m if with_metadata else {k: v for k, v in m.items() if k != "metadata"} for m in page]
        answer: Params = {"ok": True, "messages": [dict(m) for m in messages], "has_more": more}
        answer["response_metadata"] = {"next_cursor": str(offset + limit) if more else ""}
        return answer

    def _update(self, params: Params) -> Params:
        ts = params.get("ts")
        for message in self._state.history.get(str(params.get("channel")), []):
            if message["ts"] == ts:
                message.update({k: v for k, v in params.items() if k in ("text", "blocks", "attachments")})
                message["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
        return {
            "ok": True,
            "channel": params.get("channel"),
            "ts": ts,
            "text": params.get("text", ""),
            "message": _message(params, str(ts)),
        }

    def _post_ephemeral(self, params: Params) -> Params:
        return {"ok": True, "message_ts": self._next_ts()}

    def _view(self, params: Params) -> Params:
        view = params.get("view")
        fields = view if isinstance(view, dict) else {}
        view_id = f"V{next(self._view_counter):08d}"
        return {
            "ok": True,
            "view": {"id": view_id, "team_id": TEAM_ID, "app_id": "A123456", "bot_id": BOT_ID, **fields},
        }

    def _get_permalink(self, params: Params) -> Params:
        channel = str(params.get("channel", ""))
        ts = str(params.get("message_ts", ""))
        if not channel or not ts:
            return {"ok": False, "error": "invalid_arguments"}
        return {
            "ok": True,
            "channel": channel,
            "permalink": f"https://{TEAM_DOMAIN}.slack.com/archives/{channel}/p{ts.replace('.', '')}",
        }

    def _conversations_info(self, params: Params) -> Params:
        channel = str(params.get("channel", ""))
        return {
            "ok": True,
            "channel": {
                "id": channel,
                "name": f"channel-{channel.lower()}",
                "is_channel": True,
                "is_private": False,
                "is_archived": False,
                "is_member": True,
                "context_team_id": TEAM_ID,
            },
        }

    def _get_upload_url(self, params: Params) -> Params:
        file_id = f"F{next(self._file_counter):08d}"
        with self._lock:
            self._state.upload_names[file_id] = dict(params)
        return {"ok": True, "upload_url": f"{self.root_url}/upload/{file_id}", "file_id": file_id}

    def _complete_upload(self, params: Params) -> Params:
        entries = params.get("files")
        if isinstance(entries, str):
            entries = json.loads(entries)
        files = []
        for entry in entries or []:
            file_id = str(entry.get("id"))
            with self._lock:
                known = file_id in self._state.uploads
            if not known:
                return {"ok": False, "error": "file_not_found"}
            name = str(self._state.upload_names.get(file_id, {}).get("filename", ""))
            files.append({"id": file_id, "name": name, "title": entry.get("title") or name})
        return {"ok": True, "files": files}

    def _record_upload(self, file_id: str, content: bytes, headers: dict[str, str]) -> Answer:
        with self._changed:
            known = file_id in self._state.upload_names
            status = 200 if known else 404
            if known:
                self._state.uploads[file_id] = content
            call = Call(
                f"upload:{file_id}",
                {"length": len(content)},
                headers,
                time.time(),
                status,
                None if known else "unknown_upload_url",
            )
            self._state.calls.append(call)
            self._changed.notify_all()
        return status, {}, {"ok": known}

    def _conversations_open(self, params: Params) -> Params:
        users = str(params.get("users", ""))
        return {"ok": True, "channel": {"id": "D" + users.split(",")[0].removeprefix("U")}}

    def _users_info(self, params: Params) -> Params:
        user = str(params.get("user", ""))
        name = f"user-{user.lower()}"
        return {
            "ok": True,
            "user": {
                "id": user,
                "team_id": TEAM_ID,
                "name": name,
                "real_name": name,
                "deleted": False,
                "is_bot": False,
                "tz": "Europe/Paris",
                "tz_label": "Central European Time",
                "tz_offset": 3600,
                "profile": {"real_name": name, "display_name": name},
            },
        }


_DEFAULT_ANSWERS: dict[str, Callable[[SlackStandIn, Params], Params]] = {
    "auth.test": SlackStandIn._auth_test,
    "chat.postMessage": SlackStandIn._post_message,
    "chat.update": SlackStandIn._update,
    "chat.postEphemeral": SlackStandIn._post_ephemeral,
    "views.publish": SlackStandIn._view,
    "views.open": SlackStandIn._view,
    "views.update": SlackStandIn._view,
    "views.push": SlackStandIn._view,
    "conversations.info": SlackStandIn._conversations_info,
    "conversations.history": SlackStandIn._history,
    "conversations.replies": SlackStandIn._replies,
    "chat.getPermalink": SlackStandIn._get_permalink,
    "users.info": SlackStandIn._users_info,
    "files.getUploadURLExternal": SlackStandIn._get_upload_url,
    "files.completeUploadExternal": SlackStandIn._complete_upload,
    "conversations.open": SlackStandIn._conversations_open,
}


class _StandInServer(ThreadingHTTPServer):
    daemon_threads = True
    # Slack takes any number of connections. socketserver's default backlog (5) drops the SYNs of a
    # burst (the outbox opens 8 at once), and the kernel retries each a whole second later.
    request_queue_size = 128
    standin: SlackStandIn


class _Handler(BaseHTTPRequestHandler):
    server: _StandInServer

    def do_POST(self) -> None:
        if self.path.startswith("/upload/"):  # an upload_url from files.getUploadURLExternal: raw bytes
            length = int(self.headers.get("Content-Length") or 0)
            content = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            file_id = self.path.removeprefix("/upload/")
            status, extra, body = self.server.standin._record_upload(file_id, content, headers)
            self._send(status, extra, body)
            return
        self._dispatch(self._read_body())

    def do_GET(self) -> None:
        self._dispatch({})

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read the recorded calls instead."""

    def _dispatch(self, body_params: Params) -> None:
        url = urlsplit(self.path)
        method = _method_for_path(url.path)
        if method is None:
            self._send(404, {}, {"ok": False, "error": "not_found"})
            return
        params = {**dict(parse_qsl(url.query, keep_blank_values=True)), **body_params}
        headers = {name.lower(): value for name, value in self.headers.items()}
        standin = self.server.standin
        standin._enter()
        try:
            answer, delay = standin._handle(method, params, headers)
            if delay is not None and delay.seconds > 0:
                time.sleep(delay.seconds)  # the call was carried out; the answer is late
            if delay is not None and delay.drop:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._send(*answer)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting
        finally:
            standin._leave()

    def _read_body(self) -> Params:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8") if length else ""
        if not raw:
            return {}
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type == "application/json":
            parsed = json.loads(raw)
            return parsed if isinstance(parsed, dict) else {"_body": parsed}
        return {key: _maybe_json(key, value) for key, value in parse_qsl(raw, keep_blank_values=True)}

    def _send(self, status: int, extra_headers: dict[str, str], body: Params) -> None:
        payload = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in extra_headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def _method_for_path(path: str) -> str | None:
    if path.startswith("/api/") and len(path) > len("/api/"):
        return path.removeprefix("/api/")
    if path.startswith("/response/") and len(path) > len("/response/"):
        return f"{RESPONSE_URL_METHOD}:{path.removeprefix('/response/')}"
    return None


def _method_matches(wanted: str | None, method: str) -> bool:
    if wanted is None or wanted == method:
        return True
    return wanted == RESPONSE_URL_METHOD and method.startswith(RESPONSE_URL_METHOD + ":")


def _maybe_json(key: str, value: str) -> Any:
    """Form-encoded Slack calls carry blocks/views as JSON strings; decode them for easy asserts."""
    if key not in _JSON_ENCODED_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _message(params: Params, ts: str) -> Params:
    message: Params = {
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "team": TEAM_ID,
        "ts": ts,
        "text": params.get("text", ""),
    }
    for key in ("blocks", "attachments", "thread_ts", "metadata"):
        if key in params:
            message[key] = params[key]
    return message


def _basic_auth(headers: dict[str, str]) -> tuple[str, str]:
    auth = headers.get("authorization", "")
    if not auth.startswith("Basic "):
        return "", ""
    decoded = base64.b64decode(auth.removeprefix("Basic ")).decode()
    user, _, password = decoded.partition(":")
    return user, password


def _constant(body: Params) -> Responder:
    def respond(params: Params) -> Params:
        return dict(body)

    return respond


def _summarize(params: Params, limit: int = 160) -> str:
    text = json.dumps({k: v for k, v in params.items() if k != "token"}, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."
