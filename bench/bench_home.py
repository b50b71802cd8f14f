"""How long the Home refresh holds the database's writer while commands flow.

    python bench/bench_home.py [--rows 10000] [--visitors 60] [--passes 5]

Seeds a temporary SQLite file the way `bench/run.py` does, records `--visitors` people who opened
Home recently, then times `--passes` refreshes (`bot.home.refresh_if_stale`, each after a change
marked the boards stale): the whole refresh, and its write transactions — on SQLite the only part
every command waits behind (bot/home.py builds the boards from a snapshot outside them).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_digest import writes_timed  # noqa: E402
from bench_dispatch import liaison  # noqa: E402
from run import seed_movements  # noqa: E402

from bot import home  # noqa: E402
from storage import digests, home_boards  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000, help="ledger rows (default 10,000)")
    parser.add_argument("--visitors", type=int, default=60, help="people who opened Home recently")
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args(argv)
    interval = timedelta(seconds=1)
    with tempfile.TemporaryDirectory() as tmp, liaison(f"sqlite:///{Path(tmp) / 'home.db'}") as (runtime, _):
        db, now = runtime.db, runtime.clock.now()
        seed_movements(db, args.rows, 0)
        with db.session() as session:
            for number in range(args.visitors):
                digests.record_home_visit(session, f"U{number:08d}", now)
        totals: list[float] = []
        longest_writes: list[float] = []
        for number in range(args.passes):
            with db.session() as session:
                home_boards.mark_stale(session, now)
            writes: list[float] = []
            with writes_timed(db, writes):
                before = time.perf_counter()
                boards = home.refresh_if_stale(
                    db, runtime.config, now + interval * 10 * (number + 1), interval
                )
                totals.append((time.perf_counter() - before) * 1000)
            if boards != min(args.visitors, home.MAX_REFRESHES):
                raise SystemExit(f"the refresh queued {boards} boards")
            longest_writes.append(max(writes))
        print(
            f"Home refresh, {boards} boards, {args.rows:,} ledger rows: {statistics.median(totals):.1f} ms "
            f"median, its write transaction {statistics.median(longest_writes):.1f} ms median "
            f"(max {max(longest_writes):.1f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
