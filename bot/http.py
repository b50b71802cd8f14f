"""HTTP serving: Slack's endpoint (`POST /slack/events`) and a health probe (`GET /healthz`).

The app itself is WSGI (`LiaisonWSGI`: Bolt's App is synchronous, and tests call it in process);
it is served by uvicorn (an event loop with a C HTTP parser) and runs on a bounded pool of threads
(`bot.asgi`). A thread-per-connection server (waitress, used before) spends its I/O thread in
Python on every open connection at every event: at 100 concurrent clients that loop, not Liaison,
was the limit (bench/RESULTS.md).

Run it behind a reverse proxy that terminates TLS (Slack requires HTTPS). Idle keep-alive
connections are closed after `channel_timeout` seconds; past `connection_limit` open connections
or requests in progress, new requests get a 503 at once rather than queueing. A request whose body
has not arrived within `body_timeout` seconds gets a 408; on SIGTERM, requests in progress get
`shutdown_grace` seconds to finish.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import uvicorn
from slack_bolt import App

from bot.asgi import BODY_TIMEOUT_SECONDS, WsgiOnThreads
from bot.health import Check, Health, database_check, delivery_check, gather, ready_check
from bot.runtime import Runtime
from bot.slack_edge import MAX_BODY_BYTES, Answer, SlackEndpoint

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

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


# Requests handled at once per process when LIAISON_HTTP_THREADS is not set. On SQLite they queue for
# the process's one writer, and more of them make bigger commit groups; on PostgreSQL each thread
# waits on the server in turn, and past a handful they only fight over the GIL (measured at 100
# clients: 6 threads 940-984 req/s, 16 threads 810-850; see bench/RESULTS.md).
SQLITE_REQUEST_THREADS = 16
POSTGRES_REQUEST_THREADS = 6
SHUTDOWN_GRACE_SECONDS = 10.0  # below bot.workers' STOP_TIMEOUT_SECONDS, after which a worker is killed


def request_threads(configured: int | None, backend: str) -> int:
    """The threads running requests: the setting, else the default for the database `backend`."""
    if configured is not None:
        return configured
    return SQLITE_REQUEST_THREADS if backend == "sqlite" else POSTGRES_REQUEST_THREADS


class HttpServer:
    """uvicorn serving `wsgi`, in the foreground (`serve`) or in a thread (tests)."""

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
        body_timeout: float = BODY_TIMEOUT_SECONDS,
        shutdown_grace: float = SHUTDOWN_GRACE_SECONDS,
    ) -> None:
        # `sock`: a listening socket shared by several worker processes (bot.workers); else bound
        # here, so that the port is known (port 0: any free one) before serving starts.
        self._socket = sock or socket.create_server((host, port), backlog=BACKLOG)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="liaison-http")
        self.config = uvicorn.Config(
            WsgiOnThreads(wsgi, self._pool, max_body_bytes=MAX_BODY_BYTES, body_timeout=body_timeout),
            loop=_event_loop(),
            http="httptools",
            lifespan="off",
            log_config=None,  # Liaison's logging (bot.cli), not uvicorn's own
            access_log=False,
            server_header=False,
            timeout_keep_alive=channel_timeout,
            limit_concurrency=connection_limit,
            backlog=BACKLOG,
            # On SIGTERM, requests in progress are finished, for this long at most: a connection
            # that never completes its request must not keep the process (and a deploy) waiting.
            timeout_graceful_shutdown=max(1, math.ceil(shutdown_grace)),
        )
        self._grace = shutdown_grace
        self._server = uvicorn.Server(self.config)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    @property
    def host(self) -> str:
        return str(self._socket.getsockname()[0])

    def run(self) -> None:
        """Serve until SIGTERM/SIGINT (then the signal's own handler runs, see `bot.cli.serve`)."""
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def start_in_thread(self) -> None:
        self._thread = threading.Thread(target=self.run, name="liaison-http", daemon=True)
        self._thread.start()
        while not self._server.started and self._thread.is_alive():
            self._thread.join(0.01)  # until it accepts connections

    @property
    def serving(self) -> bool:
        """Whether the server started by `start_in_thread` still runs."""
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(self._grace + 10)
        else:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._socket.close()


BACKLOG = 2048


def _event_loop() -> str:
    """uvloop where it is installed (Linux, macOS), else asyncio's own loop."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"
