"""How fast Liaison answers slash commands: in-process through `App.dispatch`, and over real HTTP.

    python bench/bench_dispatch.py [--n 2000] [--database-url postgresql://...]

For each store (a temporary SQLite file, an in-memory SQLite database, and optionally the database
given with --database-url) the Bolt app is built exactly as `liaison serve` builds it, then N
Slack-signed `/arrivals poland 1` (a write: duplicate check, ledger row, totals) and N
`/deployment poland` (a read over the ledger just written) are sent one after the other, first
straight into `App.dispatch`, then over HTTP to the server `liaison serve` runs (uvicorn). Every answer is checked, so an
error or a refusal cannot pass for speed. Prints requests per second and p50/p95 latencies.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from slack_bolt import App
from slack_bolt.request import BoltRequest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import create_app  # noqa: E402
from bot.http import SLACK_PATH, HttpServer, build_wsgi  # noqa: E402
from bot.runtime import Runtime, build_runtime  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.slack_requests import signed_headers, slash_command_body  # noqa: E402
from bot.slack_requests import wsgi_environ as slack_wsgi_environ  # noqa: E402

SIGNING_SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench"
# Nothing is posted to Slack by these commands; an unreachable URL proves it.
SLACK_API_URL = "http://127.0.0.1:9/api/"
# (command, text, what the answer must contain: a refusal or an error would make the numbers meaningless)
# Arrivals first, so that /deployment reads a ledger with thousands of rows.
COMMANDS = (("/arrivals", "poland 1", "Poland: 1 arrived"), ("/deployment", "poland", "Poland:"))


@dataclass
class Result:
    store: str
    transport: str
    command: str
    latencies: list[float]
    elapsed: float

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, q: int) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1] * 1000


class Signer:
    """Requests built and signed by `bot.slack_requests`, as the shell and the tests build them."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def command_body(self, command: str, text: str, n: int) -> str:
        # A different user each time: a retyped command from one user would get the duplicate prompt.
        return slash_command_body(
            command,
            text,
            team_id="T0BENCH",
            team_domain="bench",
            channel_id="C0BENCH",
            channel_name="bench",
            user_id=f"U{n:08d}",
            user_name=f"user{n}",
            api_app_id="A0BENCH",
            response_url="https://hooks.slack.com/commands/T0BENCH/1/bench",
            trigger_id=f"{n}.bench",
            token="bench",
        )

    def headers(self, body: str) -> dict[str, str]:
        return signed_headers(self._secret, body, int(time.time()))


@contextmanager
def liaison(database_url: str) -> Iterator[tuple[Runtime, App]]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        slack_signing_secret=SIGNING_SECRET,
        slack_bot_token=BOT_TOKEN,
        slack_api_url=SLACK_API_URL,
        database_url=database_url,
    )
    runtime = build_runtime(settings, token=BOT_TOKEN)
    runtime.db.migrate()
    try:
        yield runtime, create_app(runtime, signing_secret=SIGNING_SECRET, token=BOT_TOKEN)
    finally:
        runtime.close()


def measure(
    send: Callable[[str, str, int], str], command: str, text: str, n: int, offset: int
) -> tuple[list[float], list[str]]:
    """Send `n` requests one after the other; their latencies (seconds) and answers."""
    latencies: list[float] = []
    answers: list[str] = []
    for i in range(n):
        before = time.perf_counter()
        answers.append(send(command, text, offset + i))
        latencies.append(time.perf_counter() - before)
    return latencies, answers


def wsgi_environ(signer: Signer, command: str, text: str, i: int) -> dict[str, Any]:
    """A signed slash command as a WSGI server hands it to `build_wsgi`'s app."""
    body = signer.command_body(command, text, i)
    return slack_wsgi_environ(SLACK_PATH, body, signer.headers(body))


def call_wsgi(wsgi: Any, environ: dict[str, Any]) -> tuple[str, bytes]:
    status: list[str] = []

    def start_response(line: str, _headers: Any, _exc_info: Any = None) -> None:
        status.append(line)

    body = b"".join(wsgi(environ, start_response))
    return status[0], body


def bench_threads(runtime: Runtime, app: App, n: int, threads: int, offset: int) -> None:
    """`n` `/arrivals` through the edge and Bolt (no HTTP server) from `threads` threads at once:
    what the application does per second, and its CPU per request, without the serving layer."""
    signer = Signer(SIGNING_SECRET)
    wsgi = build_wsgi(app, runtime, signing_secret=SIGNING_SECRET, ready=lambda: True)
    environs = iter([wsgi_environ(signer, "/arrivals", "poland 1", offset + i) for i in range(n)])
    taking = threading.Lock()
    failures: list[str] = []

    def work() -> None:
        while True:
            with taking:
                environ = next(environs, None)
            if environ is None:
                return
            status, body = call_wsgi(wsgi, environ)
            if not status.startswith("200") or b"arrived" not in body:
                failures.append(f"{status} {body[:200]!r}")

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started, cpu = time.perf_counter(), os.times()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed, used = time.perf_counter() - started, os.times()
    if failures:
        raise SystemExit(f"/arrivals answered something unexpected: {failures[0]}")
    user, system = (used.user - cpu.user) / n * 1000, (used.system - cpu.system) / n * 1000
    print(
        f"{threads} threads through the WSGI app: {n / elapsed:,.0f} /arrivals per second, "
        f"CPU per request {user:.3f} ms user + {system:.3f} ms sys",
        flush=True,
    )


def bench_store(store: str, database_url: str, n: int, warmup: int, threads: int = 0) -> list[Result]:
    signer = Signer(SIGNING_SECRET)
    results: list[Result] = []
    with liaison(database_url) as (runtime, app):

        def dispatch(command: str, text: str, i: int) -> str:
            body = signer.command_body(command, text, i)
            headers: dict[str, str | list[str]] = {k.lower(): [v] for k, v in signer.headers(body).items()}
            response = app.dispatch(BoltRequest(body=body, headers=headers))
            if response.status != 200:
                raise SystemExit(f"{command} {text}: HTTP {response.status} {response.body[:300]}")
            return str(response.body)

        wsgi = build_wsgi(app, runtime, signing_secret=SIGNING_SECRET, ready=lambda: True)
        server = HttpServer(wsgi, "127.0.0.1", 0, threads=4)
        server.start_in_thread()
        http = httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10)

        def post(command: str, text: str, i: int) -> str:
            body = signer.command_body(command, text, i)
            response = http.post(SLACK_PATH, content=body, headers=signer.headers(body))
            if response.status_code != 200:
                raise SystemExit(f"{command} {text}: HTTP {response.status_code} {response.text[:300]}")
            return response.text

        try:
            offset = 0
            if threads:
                bench_threads(runtime, app, n, threads, offset)
                offset += n
            for transport, send in (("dispatch", dispatch), ("http", post)):
                for command, text, expected in COMMANDS:
                    measure(send, command, text, warmup, offset)
                    offset += warmup
                    started = time.perf_counter()
                    latencies, answers = measure(send, command, text, n, offset)
                    elapsed = time.perf_counter() - started
                    offset += n
                    wrong = next((a for a in answers if expected not in a), None)
                    if wrong is not None:
                        raise SystemExit(f"{command} {text} answered something unexpected: {wrong[:300]}")
                    results.append(Result(store, transport, f"{command} {text}", latencies, elapsed))
                    print_result(results[-1])
        finally:
            http.close()
            server.close()
    return results


def print_header() -> None:
    print(f"{'store':<14}{'transport':<10}{'command':<20}{'n':>7}{'ops/s':>10}{'p50 ms':>9}{'p95 ms':>9}")


def print_result(result: Result) -> None:
    print(
        f"{result.store:<14}{result.transport:<10}{result.command:<20}{len(result.latencies):>7}"
        f"{result.rate:>10,.0f}{result.percentile(50):>9.2f}{result.percentile(95):>9.2f}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--n", type=int, default=2000, help="requests per command and transport (default 2000)"
    )
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured requests first (default 50)")
    parser.add_argument("--database-url", help="also benchmark this database (e.g. a PostgreSQL URL)")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="first send N /arrivals from this many threads at once straight into the WSGI app (no server)",
    )
    args = parser.parse_args(argv)
    for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):  # Bolt would switch to OAuth mode
        os.environ.pop(name, None)
    if args.n < 2:
        parser.error("--n must be at least 2")

    print_header()
    with tempfile.TemporaryDirectory(prefix="liaison-bench-") as tmp:
        stores = [
            ("sqlite-file", f"sqlite:///{Path(tmp) / 'bench.db'}"),
            # A shared-cache in-memory database: every connection of the process sees the same one.
            ("sqlite-memory", "sqlite:///file:liaison-bench?mode=memory&cache=shared&uri=true"),
        ]
        if args.database_url:
            stores.append(("database-url", args.database_url))
        for store, url in stores:
            keeper = _keep_alive(url)
            try:
                bench_store(store, url, args.n, args.warmup, args.threads)
            finally:
                if keeper is not None:
                    keeper.close()
    return 0


def _keep_alive(url: str) -> object | None:
    """An in-memory database lives as long as one connection to it: hold one for the run."""
    if "mode=memory" not in url:
        return None
    import sqlite3

    return sqlite3.connect("file:liaison-bench?mode=memory&cache=shared", uri=True)


if __name__ == "__main__":
    sys.exit(main())
