"""What an export does to the commands of its process: one-at-a-time `/arrivals` over HTTP, idle and
while a `/liaison export` of the whole ledger is being built.

    python bench/bench_export.py [--rows 100000] [--seconds 8] [--liaison-root DIR]

Seeds a temporary SQLite file with `--rows` movements (as `bench/run.py` seeds its ledgers), starts
`liaison serve` on it (from `--liaison-root`, to compare with another checkout), sends 1,000 signed
`/arrivals poland 1` one after the other (idle), then a signed `/liaison export` and, for `--seconds`,
`/arrivals` again. Prints p50/p99 of both series, how many requests the export window served and when
the export job was done. Every answer must be a 200.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_dispatch import SIGNING_SECRET, Signer  # noqa: E402
from run import Target, base_env, free_port, seed_movements, started  # noqa: E402

from storage import outbox  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import OutboxMessage, OutboxStatus  # noqa: E402

ADMIN = "U0BENCHADMIN"


class Sender:
    def __init__(self, client: httpx.Client, port: int) -> None:
        self._client, self._url = client, f"http://127.0.0.1:{port}/slack/events"
        self._signer, self._n = Signer(SIGNING_SECRET), 0

    def send(self, command: str, text: str, user: str | None = None) -> float:
        """Milliseconds until the answer."""
        self._n += 1
        body = self._signer.command_body(command, text, self._n)
        if user is not None:
            body = body.replace(f"user_id=U{self._n:08d}", f"user_id={user}")
        headers = {**self._signer.headers(body), "Content-Type": "application/x-www-form-urlencoded"}
        before = time.perf_counter()
        answer = self._client.post(self._url, content=body, headers=headers)
        elapsed = (time.perf_counter() - before) * 1000
        if answer.status_code != 200 or "went wrong" in answer.text:
            raise SystemExit(f"{command} {text}: {answer.status_code} {answer.text[:300]}")
        return elapsed


def export_done(db: Database) -> bool:
    query = select(func.count()).where(
        OutboxMessage.method == outbox.BUILD_EXPORT,  # type: ignore[arg-type]
        OutboxMessage.status == OutboxStatus.SENT,  # type: ignore[arg-type]
    )
    with db.read_session() as session:
        return bool(session.execute(query).scalar_one())


def describe(name: str, timings: list[float]) -> str:
    ordered = sorted(timings)
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)]
    return f"{name:<16} {len(timings):>6} {statistics.median(timings):>8.2f} {p99:>8.2f} {ordered[-1]:>8.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--liaison-root", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/bench.db"
        db = Database.from_url(url)
        db.migrate()
        seed_movements(db, args.rows, 0)
        env = {
            **base_env(),
            "DATABASE_URL": url,
            "LIAISON_ADMINS": ADMIN,
            "PYTHONPATH": str(args.liaison_root),
        }
        target = Target("liaison", [sys.executable, "-m", "bot.cli", "--log-level", "WARNING", "serve"], env)
        port = free_port()
        with started(target, port), httpx.Client() as client:
            sender = Sender(client, port)
            # This process's own collector, walking what seeding left behind, once stalled a request
            # by ~100 ms (the 263rd, every run at 100,000 rows): keep it out of the timings.
            gc.collect()
            gc.freeze()
            for _ in range(200):  # warm-up
                sender.send("/arrivals", "poland 1")
            idle = [sender.send("/arrivals", "poland 1") for _ in range(1000)]
            sender.send("/liaison", "export", user=ADMIN)
            during: list[float] = []
            done_after: float | None = None
            start = time.perf_counter()
            while time.perf_counter() - start < args.seconds:
                during.append(sender.send("/arrivals", "poland 1"))
                if done_after is None and len(during) % 50 == 0 and export_done(db):
                    done_after = time.perf_counter() - start
        db.dispose()
    print(f"{args.rows:,} ledger rows; liaison from {args.liaison_root}")
    print(f"{'':<16} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    print(describe("idle", idle))
    print(describe("during export", during))
    finished = f"{done_after:.1f} s" if done_after is not None else f"not within {args.seconds:g} s"
    print(f"export done after {finished}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
