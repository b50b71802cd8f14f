"""Liaison side by side with its peers, under the same load, in one run.

    python bench/run.py [--duration 8] [--clients 1,10,100] [--database-url postgresql://...]
                        [--overview-rows 10000,100000,1000000] [--markdown bench/latest.md]

Starts, one after the other, each on its own loopback port:

- `bare`: an ASGI endpoint (uvicorn) that only reads the body — the limit of this machine;
- `textbook`: the textbook Bolt app (`app.start()`, one SQLite insert per command);
- `liaison-sqlite`, `liaison-sqlite-x2`: `liaison serve` (and `--workers 2`) on a fresh SQLite file;
- `liaison-pg` and `liaison-pg-x2`: `liaison serve` on PostgreSQL (a scratch database created on the
  server of `--database-url` and dropped afterwards), one process and `--workers 2`.

Each is driven by `wrk` (a separate load-generator process; `apt-get install wrk`) with the same
Slack-signed `/arrivals poland 1` requests, a different user each (a retyped command would get the
duplicate prompt), at 1, 10 and 100 concurrent clients for `--duration` seconds each. Every answer
must be a 200, and afterwards the rows stored must match the acknowledged requests (no arrival lost,
none counted twice). Prints requests per second, p50/p95/p99 and the ratios to the textbook peer and
to the bare endpoint; then times the `/deployment` overview at 10k/100k/1M ledger rows, the morning
digest on the same ledgers (bench/bench_digest.py) and the notice fan-out of bench/bench_fanout.py (46
channels, 100 ms per Slack call).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from bench_digest import MARKDOWN_HEADER as DIGEST_HEADER  # noqa: E402
from bench_digest import DigestTiming, time_digests  # noqa: E402
from bench_digest import describe as describe_digest  # noqa: E402
from bench_digest import markdown_row as digest_row  # noqa: E402
from bench_dispatch import SIGNING_SECRET, Signer, liaison  # noqa: E402
from slack_bolt.request import BoltRequest  # noqa: E402

from commands.countries import all_countries  # noqa: E402
from storage import ledger, totals  # noqa: E402
from storage.db import Database, normalize_database_url  # noqa: E402
from storage.models import Movement, MovementKind  # noqa: E402
from tests.support.slack_standin import SlackStandIn  # noqa: E402

BOT_TOKEN = "xoxb-bench"
UNREACHABLE_SLACK = "http://127.0.0.1:9/api/"
STARTUP_TIMEOUT = 60.0
WRK_THREADS = 2


@dataclass
class Step:
    target: str
    clients: int
    requests: int
    seconds: float
    p50: float
    p95: float
    p99: float
    errors: int
    non200: int
    stored: int | None = None

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class Target:
    name: str
    command: list[str]
    env: dict[str, str]
    count_stored: str | None = None  # a database URL whose `movement` (or peer) rows are counted
    peer_table: bool = False
    notes: str = ""
    cleanup: list[Path] = field(default_factory=list)


def liaison_targets(name: str, urls: tuple[str, str], env: dict[str, str], workers: int) -> list[Target]:
    """`liaison serve` on `urls[0]`, and `liaison serve --workers N` on `urls[1]`."""
    serve = [sys.executable, "-m", "bot.cli", "--log-level", "WARNING", "serve"]
    return [
        Target(name, serve, {**env, "DATABASE_URL": urls[0]}, count_stored=urls[0]),
        Target(
            f"{name}-x{workers}",
            [*serve, "--workers", str(workers)],
            {**env, "DATABASE_URL": urls[1]},
            count_stored=urls[1],
        ),
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LIAISON_"))}
    env.pop("DATABASE_URL", None)
    env.update(
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_API_URL=UNREACHABLE_SLACK,
    )
    return env


@contextmanager
def started(target: Target, port: int) -> Iterator[None]:
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(
            [*target.command, "--port", str(port)],
            env=target.env,
            cwd=target.env.get("PYTHONPATH", ROOT),
            stdout=log,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    raise SystemExit(f"{target.name} exited at start:\n{log.read()[-3000:]}")
                try:
                    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{target.name} did not start listening on {port}") from None
                    time.sleep(0.2)
            yield
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def wrk_threads(clients: int) -> int:
    return min(WRK_THREADS, clients)


def write_requests(path: Path, count: int, offset: int, countries: int = 1, threads: int = 1) -> None:
    """`count` signed `/arrivals`, a new user each, as whole HTTP requests for signed.lua: one file per
    wrk thread (`path.0`, `path.1`…, request n in file n % threads), each request an 8-digit length
    and its bytes. wrk only reads the next one (no parsing, nothing loaded before its clock starts)."""
    signer = Signer(SIGNING_SECRET)
    codes = [country.code for country in all_countries()][:countries] if countries > 1 else ["poland"]
    outs = [share_path(path, thread).open("wb") for thread in range(threads)]
    try:
        for n in range(offset, offset + count):
            text = signer.command_body("/arrivals", f"{codes[n % len(codes)]} 1", n)
            headers, body = signer.headers(text), text.encode()
            request = (
                b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                + f"X-Slack-Request-Timestamp: {headers['X-Slack-Request-Timestamp']}\r\n".encode()
                + f"X-Slack-Signature: {headers['X-Slack-Signature']}\r\n".encode()
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            outs[n % threads].write(b"%08d" % len(request) + request)
    finally:
        for out in outs:
            out.close()


def share_path(path: Path, thread: int) -> Path:
    return path.with_name(f"{path.name}.{thread}")


def run_wrk(port: int, clients: int, duration: float, requests_file: Path) -> dict[str, float]:
    threads = wrk_threads(clients)
    env = {**os.environ, "BENCH_REQUESTS": str(requests_file)}
    result = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{clients}",
            f"-d{max(round(duration), 1)}s",
            "--timeout",
            "10s",
            "-s",
            str(BENCH / "signed.lua"),
            f"http://127.0.0.1:{port}/slack/events",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=duration + 120,
    )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise SystemExit(f"wrk gave no result:\n{result.stdout}\n{result.stderr}")
    parsed: dict[str, float] = json.loads(line.removeprefix("BENCH "))
    return parsed


def stored_rows(url: str, peer_table: bool) -> int:
    if peer_table:
        import sqlite3

        with sqlite3.connect(make_url(url).database or "") as connection:
            return int(connection.execute("SELECT count(*) FROM arrival").fetchone()[0])
    db = Database.from_url(url)
    try:
        with db.session() as session:
            return int(session.execute(select(func.count()).select_from(Movement)).scalar_one())
    finally:
        db.dispose()


_next_user = 0


def bench_target(
    target: Target, clients: list[int], duration: float, tmp: Path, countries: int = 1
) -> list[Step]:
    steps: list[Step] = []
    port = free_port()
    # Users never seen before in this run: a user retyping the same command gets the duplicate prompt.
    global _next_user
    offset, _next_user = _next_user, _next_user + 10_000_000
    with started(target, port):
        for count in clients:
            # Enough distinct users for 5,000 requests/s; timestamps fresh (Slack's 5-minute window).
            prepared = int(5000 * duration)
            requests_file = tmp / f"{target.name}-{count}.requests"
            threads = wrk_threads(count)
            write_requests(requests_file, prepared, offset, countries, threads)
            offset += prepared
            before = stored_rows(target.count_stored, target.peer_table) if target.count_stored else None
            raw = run_wrk(port, count, duration, requests_file)
            for thread in range(threads):
                share_path(requests_file, thread).unlink()
            step = Step(
                target.name,
                count,
                int(raw["requests"]),
                raw["seconds"],
                raw["p50"],
                raw["p95"],
                raw["p99"],
                int(raw["errors"]),
                int(raw["non200"]),
            )
            if target.count_stored and before is not None:
                time.sleep(0.5)  # requests still in flight when wrk stopped
                step.stored = stored_rows(target.count_stored, target.peer_table) - before
                acked = step.requests - step.non200
                if step.requests <= prepared and not (acked <= step.stored <= step.requests + count):
                    raise SystemExit(
                        f"{target.name}: {acked} acknowledged arrivals but {step.stored} rows stored"
                    )
            steps.append(step)
            print_step(step, None, None)
    return steps


def print_step(step: Step, peer: Step | None, bare: Step | None) -> None:
    ratios = ""
    if peer is not None and peer.rate:
        ratios += f"{step.rate / peer.rate:>9.1f}×"
    if bare is not None and bare.rate:
        ratios += f"{100 * step.rate / bare.rate:>9.1f}%"
    print(
        f"{step.target:<16}{step.clients:>8}{step.rate:>10,.0f}{step.p50:>9.2f}{step.p95:>9.2f}{step.p99:>9.2f}"
        f"{step.non200 + step.errors:>8}{'' if step.stored is None else step.stored:>9}{ratios}",
        flush=True,
    )


HEADER = (
    f"{'target':<16}{'clients':>8}{'req/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}"
    f"{'stored':>9}{'vs peer':>10}{'vs bare':>10}"
)


def markdown_table(steps: list[Step], clients: list[int]) -> list[str]:
    by = {(s.target, s.clients): s for s in steps}
    lines = [
        "| target | clients | req/s | p50 ms | p95 ms | p99 ms | non-200 / errors | rows stored | × textbook peer | % of bare |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for step in steps:
        peer, bare = by.get(("textbook", step.clients)), by.get(("bare", step.clients))
        vs_peer = f"{step.rate / peer.rate:.1f}×" if peer and peer.rate else "—"
        vs_bare = f"{100 * step.rate / bare.rate:.1f} %" if bare and bare.rate else "—"
        lines.append(
            f"| {step.target} | {step.clients} | {step.rate:,.0f} | {step.p50:.2f} | {step.p95:.2f} | "
            f"{step.p99:.2f} | {step.non200 + step.errors} | {'—' if step.stored is None else step.stored} | "
            f"{vs_peer} | {vs_bare} |"
        )
    return lines


# -- PostgreSQL scratch database -------------------------------------------------------------------


@contextmanager
def scratch_postgres(url: str) -> Iterator[str]:
    import psycopg

    parsed = make_url(normalize_database_url(url))
    name = f"liaison_bench_{os.getpid()}"
    admin = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- the overview at 10k / 100k / 1M ledger rows ---------------------------------------------------


SEED_START = datetime(2026, 7, 1, tzinfo=UTC)


def seeded_until(rows: int) -> datetime:
    """When the last of `rows` seeded movements was recorded (one a second from SEED_START)."""
    return SEED_START + timedelta(seconds=rows - 1)


def seed_movements(db: Database, rows: int, already: int) -> None:
    countries = [country.code for country in all_countries()][:46]
    capabilities = [None, "eod", "dog-team", "patrol", "ct", "mounted", "medical", "public-order", "liaison"]
    batch: list[dict[str, object]] = []
    with db.session() as session:
        for n in range(already, rows):
            batch.append(
                {
                    "country": countries[n % len(countries)],
                    "kind": MovementKind.DEPARTURE if n % 5 == 4 else MovementKind.ARRIVAL,
                    "count": 1,
                    "capability": capabilities[n % len(capabilities)],
                    "recorded_by": f"U{n % 500:08d}",
                    "channel_id": "C0BENCH",
                    "command_text": "/arrivals bench 1",
                    "created_at": SEED_START + timedelta(seconds=n),
                }
            )
            if len(batch) == 20_000:
                session.execute(insert(Movement), batch)
                batch.clear()
        if batch:
            session.execute(insert(Movement), batch)
        totals.rebuild(session)  # core inserts bypass the ORM listener: rebuild from the ledger


def bench_overview(
    sizes: list[int], tmp: Path, samples: int = 20
) -> tuple[list[tuple[int, float, float, float]], list[DigestTiming]]:
    """(rows, median ms of /deployment through Bolt, p95 ms, median ms of the old ledger aggregate)
    per size, and the digest's timings on the same ledger (bench_digest.py)."""
    url = f"sqlite:///{tmp / 'overview.db'}"
    results = []
    digest_timings = []
    signer = Signer(SIGNING_SECRET)
    with liaison(url) as (runtime, app):
        seeded = 0
        for size in sizes:
            seed_movements(runtime.db, size, seeded)
            seeded = size
            latencies = []
            for i in range(samples + 2):
                body = signer.command_body("/deployment", "", 10_000_000 + i)
                headers: dict[str, str | list[str]] = {
                    k.lower(): [v] for k, v in signer.headers(body).items()
                }
                before = time.perf_counter()
                response = app.dispatch(BoltRequest(body=body, headers=headers))
                latencies.append((time.perf_counter() - before) * 1000)
                if response.status != 200 or "All countries:" not in str(response.body):
                    raise SystemExit(f"/deployment answered {response.status}: {str(response.body)[:300]}")
            latencies = latencies[2:]
            aggregate = []
            for _ in range(3):
                with runtime.db.session() as session:
                    before = time.perf_counter()
                    truth = ledger.deployment_status(session)
                    aggregate.append((time.perf_counter() - before) * 1000)
                    assert truth == totals.deployment_status(session)
            results.append(
                (
                    size,
                    statistics.median(latencies),
                    statistics.quantiles(latencies, n=20)[-1],
                    statistics.median(aggregate),
                )
            )
            print(
                f"/deployment overview, {size:>9,} ledger rows: {results[-1][1]:7.2f} ms median, "
                f"{results[-1][2]:7.2f} ms p95 (the ledger aggregate it replaced: {results[-1][3]:8.1f} ms)",
                flush=True,
            )
            digest_timings.append(time_digests(runtime.db, runtime.config, size, seeded_until(size)))
            print(describe_digest(digest_timings[-1]), flush=True)
    return results, digest_timings


# -- main ------------------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        model = next(
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in ln
        )
        cpu = model
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, {platform.system()} "
        f"{platform.release()}, load average {load:.2f} at start"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per step (default 8)")
    parser.add_argument(
        "--clients", default="1,10,100", help="concurrent clients per step (default 1,10,100)"
    )
    parser.add_argument("--database-url", help="PostgreSQL server: a scratch database is created on it")
    parser.add_argument("--targets", help="only these targets (comma-separated names)")
    parser.add_argument(
        "--workers", type=int, default=2, help="processes of the multi-process row (default 2)"
    )
    parser.add_argument("--overview-rows", default="10000,100000,1000000", help="ledger sizes ('' to skip)")
    parser.add_argument(
        "--countries",
        type=int,
        default=1,
        help="spread the arrivals over this many countries (default 1: all `/arrivals poland 1`)",
    )
    parser.add_argument("--no-fanout", action="store_true", help="skip the notice fan-out")
    parser.add_argument("--markdown", type=Path, help="also write the results as Markdown to this file")
    parser.add_argument(
        "--serve-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="environment for the liaison serve processes, e.g. LIAISON_HTTP_THREADS=4 (repeatable)",
    )
    parser.add_argument(
        "--liaison-root",
        type=Path,
        default=ROOT,
        help="serve Liaison from this source tree (e.g. `git archive` of an older commit, to compare)",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is needed as the load generator: apt-get install wrk")
    clients = [int(c) for c in args.clients.split(",") if c]
    wanted = set(args.targets.split(",")) if args.targets else None
    started_at = datetime.now(UTC)
    spread = (
        "all `/arrivals poland 1`"
        if args.countries <= 1
        else f"`/arrivals <country> 1` over {args.countries} countries"
    )
    report = [
        f"Run {started_at:%Y-%m-%d %H:%M} UTC on {machine()}; {args.duration:g} s per step; {spread}.",
        "",
    ]
    print(report[0], flush=True)

    steps: list[Step] = []
    with (
        tempfile.TemporaryDirectory(prefix="liaison-run-") as tmp_name,
        _postgres(args.database_url) as pg_url,
        SlackStandIn() as slack,
    ):
        tmp = Path(tmp_name)
        env = {**base_env(), "SLACK_API_URL": slack.base_url}
        served = {**env, "PYTHONPATH": str(args.liaison_root.resolve())}
        served.update(item.split("=", 1) for item in args.serve_env)
        python = sys.executable
        sqlite_url = f"sqlite:///{tmp / 'liaison.db'}"
        targets = [
            Target("bare", [python, str(BENCH / "peers" / "bare_asgi.py")], env),
            Target(
                "textbook",
                [python, str(BENCH / "peers" / "textbook_bolt.py"), "--db", str(tmp / "peer.db")],
                env,
                count_stored=f"sqlite:///{tmp / 'peer.db'}",
                peer_table=True,
            ),
            *liaison_targets(
                "liaison-sqlite",
                (sqlite_url, f"sqlite:///{tmp / 'liaison-x.db'}"),
                served,
                args.workers,
            ),
        ]
        if pg_url is not None:
            targets += liaison_targets("liaison-pg", (pg_url, pg_url), served, args.workers)
        print(HEADER, flush=True)
        for target in targets:
            if wanted is None or target.name in wanted:
                steps.extend(bench_target(target, clients, args.duration, tmp, args.countries))

        print("\nWith the ratios:\n" + HEADER)
        by = {(s.target, s.clients): s for s in steps}
        for step in steps:
            print_step(step, by.get(("textbook", step.clients)), by.get(("bare", step.clients)))
        report += [
            "### `/arrivals` under load (wrk, signed requests)",
            "",
            *markdown_table(steps, clients),
            "",
        ]

        sizes = [int(s) for s in args.overview_rows.split(",") if s]
        if sizes:
            print()
            overview, digest_timings = bench_overview(sizes, tmp)
            report += [
                "### `/deployment` overview (46 countries) as the ledger grows",
                "",
                "| ledger rows | /deployment median ms | p95 ms | the full ledger aggregate (before) ms |",
                "|---:|---:|---:|---:|",
                *[f"| {r:,} | {m:.2f} | {p:.2f} | {a:.1f} |" for r, m, p, a in overview],
                "",
                "### The morning digest on the same ledger (bench_digest.py)",
                "",
                *DIGEST_HEADER,
                *[digest_row(timing) for timing in digest_timings],
                "",
            ]
        if not args.no_fanout:
            from bench_fanout import measure

            fan_out = [("sqlite file", f"sqlite:///{tmp / 'fanout.db'}")]
            if pg_url is not None:
                fan_out.append(("postgresql", pg_url))
            report += ["### Notice fan-out: 46 channels, 100 ms per Slack call, 8 in flight", ""]
            for label, url in fan_out:
                if label == "postgresql":
                    _reset_postgres(url)
                elapsed, in_flight = measure(url, 46, 0.1, 8)
                print(
                    f"notice fan-out ({label}): {elapsed:.2f} s, {in_flight} calls in flight at most",
                    flush=True,
                )
                report.append(f"- {label}: {elapsed:.2f} s ({in_flight} calls in flight at most)")
            report.append("")
    if args.markdown:
        args.markdown.write_text("\n".join(report) + "\n")
        print(f"\nwrote {args.markdown}")
    return 0


@contextmanager
def _postgres(url: str | None) -> Iterator[str | None]:
    if url is None:
        yield None
        return
    with scratch_postgres(url) as scratch:
        yield scratch


def _reset_postgres(url: str) -> None:
    """Empty the scratch database (the serve runs left rows) so the fan-out starts clean."""
    from sqlalchemy import MetaData

    db = Database.from_url(url)
    try:
        metadata = MetaData()
        metadata.reflect(db.engine)
        metadata.drop_all(db.engine)
    finally:
        db.dispose()


if __name__ == "__main__":
    sys.exit(main())
