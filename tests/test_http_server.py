"""waitress in front of the WSGI app: slow clients do not starve /healthz; idle ones are closed."""

from __future__ import annotations

import socket
from contextlib import ExitStack

import httpx

from bot.http import HttpServer
from tests.support.bot import RunningBot

SLOW_CLIENTS = 150  # the issue saw ~99 exhaust waitress' default limit of 100


def test_slow_connections_do_not_starve_the_health_probe(bot: RunningBot) -> None:
    server = HttpServer(bot.wsgi, "127.0.0.1", 0, threads=2, channel_timeout=15, connection_limit=500)
    server.start_in_thread()
    try:
        with ExitStack() as stack:
            for _ in range(SLOW_CLIENTS):  # each sends half a request line and stalls
                conn = stack.enter_context(socket.create_connection(("127.0.0.1", server.port), timeout=5))
                conn.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            health = httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
            assert health.status_code == 200
    finally:
        server.close()


def test_waitress_bounds_connections_and_their_idle_time(bot: RunningBot) -> None:
    server = HttpServer(bot.wsgi, "127.0.0.1", 0, threads=2, channel_timeout=15, connection_limit=500)
    adjustments = server._server.adj  # type: ignore[union-attr]
    assert (adjustments.channel_timeout, adjustments.connection_limit) == (15, 500)
    assert adjustments.cleanup_interval <= 5
    server.close()
