"""The WSGI app (`bot.http.LiaisonWSGI`) behind an ASGI server: the event loop reads and writes the
sockets, and each complete request runs on a bounded pool of threads (Bolt's App is synchronous).

The body is read whole, up to the edge's limit, before a thread is taken: a slow or stalled client
holds a coroutine, never a thread, and for BODY_TIMEOUT_SECONDS at most (then a 408). Requests only ever carry a form or JSON body of a few kilobytes,
so the answer is also built whole and sent in one piece.

Why not a library adapter (a2wsgi's WSGIMiddleware): it streams each request between the loop and
the thread message by message; on `/arrivals` at 100 concurrent clients it served 880 req/s where this
one serves 1,460 (bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_TOO_LARGE = b"request body too large\n"
_TOO_SLOW = b"request body not received in time\n"
_CLOSE = (b"connection", b"close")
# Slack sends its few kilobytes at once, and gives up on an answer after 3 seconds.
BODY_TIMEOUT_SECONDS = 10.0


class WsgiOnThreads:
    """An ASGI app running `wsgi` for each HTTP request on `pool`."""

    def __init__(
        self,
        wsgi: WSGIApplication,
        pool: ThreadPoolExecutor,
        *,
        max_body_bytes: int,
        body_timeout: float = BODY_TIMEOUT_SECONDS,
    ) -> None:
        self._wsgi = wsgi
        self._pool = pool
        self._max_body = max_body_bytes
        self._body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets here
        try:
            async with asyncio.timeout(self._body_timeout):
                body = await self._read_body(scope, receive)
        except TimeoutError:
            # A client that stalls mid-body would hold its connection (and a slot of the connection
            # limit) for ever, and keep a graceful shutdown waiting for it.
            await _send(send, 408, [(b"content-type", b"text/plain; charset=utf-8"), _CLOSE], _TOO_SLOW)
            return
        if body is None:
            await _send(send, 413, [(b"content-type", b"text/plain; charset=utf-8")], _TOO_LARGE)
            return
        environ = _environ(scope, body)
        loop = asyncio.get_running_loop()
        status, headers, payload = await loop.run_in_executor(self._pool, self._call, environ)
        await _send(send, status, headers, b"" if scope["method"] == "HEAD" else payload)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _call(self, environ: WSGIEnvironment) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started["status"], started["headers"] = status, headers
            return lambda _data: None

        result: Iterable[bytes] = self._wsgi(environ, start_response)
        try:
            payload = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in started["headers"]
        ]
        return int(str(started["status"]).split(" ", 1)[0]), headers, payload


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], payload: bytes) -> None:
    if not any(name == b"content-length" for name, _ in headers):
        headers = [*headers, (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _environ(scope: Scope, body: bytes) -> WSGIEnvironment:
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": "",
        "PATH_INFO": scope["path"],
        "QUERY_STRING": bytes(scope.get("query_string", b"")).decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": str(client[0]),
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope["headers"]:
        name = bytes(raw_name).decode("latin-1").upper().replace("-", "_")
        value = bytes(raw_value).decode("latin-1")
        if name == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
        elif name != "CONTENT_LENGTH":
            key = f"HTTP_{name}"
            environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ
