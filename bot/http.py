"""HTTP serving: Slack's endpoint (`POST /slack/events`) and a health probe (`GET /healthz`) on a
multi-threaded WSGI server (waitress). Bolt's sync App is WSGI-native, so nothing blocks an event loop."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress.server import create_server

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from waitress.server import BaseWSGIServer, MultiSocketServer

log = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
MAX_BODY_BYTES = 1_000_000  # Slack's payloads are a few KB


class LiaisonWSGI:
    def __init__(
        self, app: App, ready: Callable[[], bool], problems: Callable[[], list[str]] | None = None
    ) -> None:
        self._slack = SlackRequestHandler(app, path=SLACK_PATH)
        self._ready = ready
        self._problems = problems or (lambda: [])

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            return self._health(start_response)
        if path == SLACK_PATH:
            if method != "POST":
                start_response("405 Method Not Allowed", [("Content-Type", "text/plain"), ("Allow", "POST")])
                return [b"POST only\n"]
            return self._slack(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    def _health(self, start_response: StartResponse) -> Iterable[bytes]:
        """200 `ok` or `degraded` (serving, but Slack delivery needs an admin), 503 while starting."""
        if not self._ready():
            body: dict[str, object] = {"status": "starting"}
            status = "503 Service Unavailable"
        else:
            try:
                reasons = self._problems()
            except Exception as error:
                log.exception("health check failed")
                reasons = [f"health check failed: {type(error).__name__}"]
            body = {"status": "degraded", "reasons": reasons} if reasons else {"status": "ok"}
            status = "200 OK"
        start_response(status, [("Content-Type", "application/json"), ("Cache-Control", "no-store")])
        return [json.dumps(body).encode() + b"\n"]


class HttpServer:
    """A waitress server that can run in the foreground (`serve`) or in a thread (tests)."""

    def __init__(
        self, wsgi: LiaisonWSGI, host: str, port: int, threads: int, *, sock: socket.socket | None = None
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
        self._server.close()
        if self._thread is not None:
            self._thread.join(5)
