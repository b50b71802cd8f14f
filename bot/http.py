"""HTTP serving: Slack's endpoint (`POST /slack/events`) and a health probe (`GET /healthz`) on a
multi-threaded WSGI server (waitress). Bolt's sync App is WSGI-native, so nothing blocks an event loop.

waitress is not meant to face the internet alone: run it behind a reverse proxy that terminates TLS
and buffers whole requests (nginx does by default), so slow clients tie up the proxy, not waitress'
connections. Idle connections are closed after `channel_timeout` seconds all the same.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from slack_bolt import App
from waitress import wasyncore
from waitress.server import create_server

from bot.health import Check, Health, database_check, delivery_check, gather, ready_check
from bot.runtime import Runtime
from bot.slack_edge import MAX_BODY_BYTES, Answer, SlackEndpoint

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from waitress.server import BaseWSGIServer, MultiSocketServer

log = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"
HEALTH_PATH = "/healthz"


class LiaisonWSGI:
    def __init__(self, slack: SlackEndpoint, health: Callable[[], Health]) -> None:
        self._slack = slack
        self._health = health

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        answer = self._route(environ)
        start_response(
            _status_line(answer.status),
            [("Content-Type", answer.content_type), ("Content-Length", str(len(answer.body)))]
            + ([("Allow", _ALLOWED[environ.get("PATH_INFO", "")])] if answer.status == 405 else []),
        )
        return [answer.body]

    def _route(self, environ: WSGIEnvironment) -> Answer:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path not in _ALLOWED:
            return Answer.text(404, "not found")
        if method not in _ALLOWED[path]:
            return Answer.text(405, f"{_ALLOWED[path]} only")
        if path == HEALTH_PATH:
            health = self._health()
            return Answer(health.status, health.to_json(), "application/json")
        return self._slack.handle(environ)


def build_wsgi(
    app: App,
    runtime: Runtime,
    *,
    signing_secret: str,
    ready: Callable[[], bool],
    checks: list[Check] | None = None,
) -> LiaisonWSGI:
    """Slack's endpoint for `app`, and /healthz: ready, the database answering, plus `checks`;
    degraded by Slack delivery problems."""
    endpoint = SlackEndpoint(app, runtime.db, runtime.clock, signing_secret=signing_secret)
    all_checks = [ready_check(ready), database_check(runtime.db), *(checks or [])]
    degradations = [delivery_check(runtime)]
    return LiaisonWSGI(endpoint, lambda: gather(all_checks, degradations))


_ALLOWED = {HEALTH_PATH: "GET, HEAD", SLACK_PATH: "POST"}
_REASONS = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
    413: "Payload Too Large", 500: "Internal Server Error", 503: "Service Unavailable",
}  # fmt: skip


def _status_line(status: int) -> str:
    return f"{status} {_REASONS.get(status, 'Status')}"


class HttpServer:
    """A waitress server that can run in the foreground (`serve`) or in a thread (tests)."""

    def __init__(
        self,
        wsgi: LiaisonWSGI,
        host: str,
        port: int,
        threads: int,
        *,
        channel_timeout: int = 15,
        connection_limit: int = 500,
        sock: socket.socket | None = None,
    ) -> None:
        # `sock`: a listening socket shared by several worker processes (bot.workers).
        where: dict[str, Any] = {"sockets": [sock]} if sock is not None else {"host": host, "port": port}
        self._server: BaseWSGIServer | MultiSocketServer = create_server(
            wsgi,
            **where,
            threads=threads,
            max_request_body_size=MAX_BODY_BYTES,
            ident="liaison",
            clear_untrusted_proxy_headers=True,
            # Slow or idle clients: closed after channel_timeout s without progress, checked every
            # cleanup_interval s; connection_limit bounds open sockets (the proxy absorbs the rest).
            channel_timeout=channel_timeout,
            cleanup_interval=max(1, min(channel_timeout, 5)),
            connection_limit=connection_limit,
        )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(getattr(self._server, "effective_port"))  # noqa: B009  (waitress sets it at bind)

    @property
    def host(self) -> str:
        return str(getattr(self._server, "effective_host"))  # noqa: B009

    def run(self) -> None:
        self._server.run()

    def start_in_thread(self) -> None:
        self._thread = threading.Thread(target=self.run, name="liaison-http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._server.close()
            return
        # Close every socket from inside the serving loop (closing them from this thread while the
        # loop selects on them gives "Bad file descriptor"); with nothing left to watch, it returns.
        server = self._server
        sockets = getattr(server, "_map")  # noqa: B009
        getattr(server, "trigger").pull_trigger(lambda: wasyncore.close_all(sockets))  # noqa: B009
        self._thread.join(5)
        getattr(server, "task_dispatcher").shutdown()  # noqa: B009
