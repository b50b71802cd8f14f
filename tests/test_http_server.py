"""uvicorn in front of the WSGI app (bot.http, bot.asgi), over real sockets: slow clients hold no
thread and do not starve /healthz; idle connections are closed; past the limit a request gets a 503
at once; oversized bodies are refused before they are read; HEAD has no body."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx

from bot.http import (
    POSTGRES_REQUEST_THREADS,
    SQLITE_REQUEST_THREADS,
    HttpServer,
    LiaisonWSGI,
    request_threads,
)
from bot.slack_edge import MAX_BODY_BYTES
from tests.support.bot import RunningBot

SLOW_CLIENTS = 150  # more than the threads (2) and than waitress' old default limit of 100


@contextmanager
def serving(wsgi: Any, **options: Any) -> Iterator[HttpServer]:
    settings: dict[str, Any] = {"threads": 2, "channel_timeout": 15, "connection_limit": 500, **options}
    server = HttpServer(wsgi, "127.0.0.1", 0, **settings)
    server.start_in_thread()
    try:
        yield server
    finally:
        server.close()


def stalled(stack: ExitStack, port: int) -> socket.socket:
    """A client that sends half a request and stalls."""
    conn = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
    conn.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    return conn


def test_slow_connections_do_not_starve_the_health_probe(bot: RunningBot) -> None:
    with serving(bot.wsgi) as server, ExitStack() as stack:
        for _ in range(SLOW_CLIENTS):
            stalled(stack, server.port)
        health = httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
        assert health.status_code == 200
        assert health.json()["status"] == "ok"


def test_past_the_connection_limit_a_request_is_refused_at_once(bot: RunningBot) -> None:
    with serving(bot.wsgi, connection_limit=10) as server, ExitStack() as stack:
        for _ in range(10):
            stalled(stack, server.port)
        refused = httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
        assert refused.status_code == 503
    with serving(bot.wsgi, connection_limit=10) as server:  # under the limit: served
        assert httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5).status_code == 200


def test_an_idle_keep_alive_connection_is_closed(bot: RunningBot) -> None:
    with serving(bot.wsgi, channel_timeout=1) as server:
        conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        with conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            received = b""
            while True:  # the answer, then the server's close (an empty read) once idle 1 s
                chunk = conn.recv(65536)
                if not chunk:
                    break
                received += chunk
        assert received.startswith(b"HTTP/1.1 200")


def test_an_oversized_body_is_refused_before_it_is_read(bot: RunningBot) -> None:
    with serving(bot.wsgi) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
            conn.sendall(
                b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode()
            )  # the body itself never comes
            answer = conn.recv(65536)
        assert answer.startswith(b"HTTP/1.1 413")
        streamed = httpx.post(
            f"http://127.0.0.1:{server.port}/slack/events",
            content=iter([b"x" * 500_000] * 3),  # chunked: no Content-Length to go by
            timeout=10,
        )
        assert streamed.status_code == 413


def test_a_body_that_stops_coming_is_answered_408_and_the_connection_closed(bot: RunningBot) -> None:
    with serving(bot.wsgi, body_timeout=0.2) as server, ExitStack() as stack:
        conn = stalled(stack, server.port)
        received = b""
        while chunk := conn.recv(65536):  # the answer, then the server's close (an empty read)
            received += chunk
        assert received.startswith(b"HTTP/1.1 408")
        assert received.endswith(b"request body not received in time\n")
        assert httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5).status_code == 200


def test_shutdown_waits_for_a_stalled_client_only_so_long(bot: RunningBot) -> None:
    """SIGTERM (here `close`, the same graceful shutdown) finishes the requests in progress, but a
    client that never completes its request does not keep the process alive (a deploy waiting, or a
    worker killed by bot.workers)."""
    with ExitStack() as stack:
        server = HttpServer(bot.wsgi, "127.0.0.1", 0, threads=2, body_timeout=3600, shutdown_grace=0.5)
        server.start_in_thread()
        stalled(stack, server.port)
        server.close()
        assert not server.serving


def test_head_answers_without_a_body(bot: RunningBot) -> None:
    with serving(bot.wsgi) as server:
        head = httpx.head(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
        assert (head.status_code, head.content) == (200, b"")
        assert int(head.headers["content-length"]) > 0  # what a GET would carry


def test_a_slow_request_holds_one_thread_not_the_server(bot: RunningBot) -> None:
    """A request still being handled (a slow Slack read, a busy database) does not stop others."""
    entered, release = threading.Event(), threading.Event()

    def app(environ: Any, start_response: Any) -> Any:
        if environ["PATH_INFO"] == "/slow":
            entered.set()
            release.wait(10)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"slow"]
        return wsgi(environ, start_response)

    wsgi: LiaisonWSGI = bot.wsgi
    with serving(app) as server:
        slow: list[httpx.Response] = []
        thread = threading.Thread(
            target=lambda: slow.append(httpx.get(f"http://127.0.0.1:{server.port}/slow", timeout=10))
        )
        thread.start()
        assert entered.wait(10)
        assert httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5).status_code == 200
        release.set()
        thread.join(10)
        assert slow[0].text == "slow"


def test_request_threads_default_to_the_databases_and_a_setting_wins() -> None:
    assert request_threads(None, "sqlite") == SQLITE_REQUEST_THREADS == 16
    assert request_threads(None, "postgresql") == POSTGRES_REQUEST_THREADS == 6
    assert request_threads(3, "postgresql") == 3
    assert request_threads(32, "sqlite") == 32
