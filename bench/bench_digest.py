"""How long the morning digest takes to build on a large ledger, and how long it holds the writer.

    python bench/bench_digest.py [--rows 10000,100000,1000000]

`bench/run.py` calls `time_digests` on the ledger it seeds for the `/deployment` overview; run alone,
this seeds a temporary SQLite file the same way. For each ledger size it times, on a snapshot
(`Database.read_session`, as `bot/digests.py` reads):
- the digest's build (every query of `commands.digest_content.gather`, then `render`), for the overall
  view and for one country;
- the chart (`render_chart`) of the overall view (the first one a process draws costs more: fonts);
- one real pass of the scheduler (`bot.digests.send_due`) sending both digests with their charts,
  and the longest write transaction in it — the only part that makes a command wait for its turn.

The bench seed records one movement per second (86,400 a day: far denser than the Games), so the
overall digest's 24-hour and 14-day windows hold far more rows than they ever will in service.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.digests import send_due  # noqa: E402
from commands.common import CommandConfig  # noqa: E402
from commands.digest_chart import render_chart  # noqa: E402
from commands.digest_content import gather, render  # noqa: E402
from commands.local_times import due_moment, parse_time_of_day  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.digests import Window  # noqa: E402
from storage.models import DigestSubscription  # noqa: E402

SEND_AT = "07:00"
COUNTRY = "PL"
CHANNELS = {None: "C0BENCHALL", COUNTRY: "C0BENCHPL"}


@dataclass(frozen=True)
class DigestTiming:
    rows: int
    overall_ms: float  # build: read on a snapshot, then render
    country_ms: float
    chart_ms: float
    pass_ms: float  # send_due: both digests claimed and queued with their charts
    longest_write_ms: float  # the longest write transaction of that pass


def first_send_after(moment: datetime, config: CommandConfig) -> datetime:
    """The first 07:00 (local) after `moment`, plus 30 minutes: a digest due and not yet sent."""
    day = moment.astimezone(config.zone).date()
    while (due := due_moment(day, parse_time_of_day(SEND_AT), config.zone)) <= moment:
        day += timedelta(days=1)
    return due + timedelta(minutes=30)


def build_ms(db: Database, config: CommandConfig, now: datetime, scope: str | None, samples: int) -> float:
    timings = []
    for _ in range(samples):
        before = time.perf_counter()
        with db.read_session() as session:
            data = gather(session, config, window=Window(now - timedelta(hours=24), now), scope=scope)
        render(data, config.zone)
        timings.append((time.perf_counter() - before) * 1000)
    return statistics.median(timings)


def chart_ms(db: Database, config: CommandConfig, now: datetime, samples: int) -> float:
    with db.read_session() as session:
        data = gather(session, config, window=Window(now, now), scope=None)
    timings = []
    for _ in range(samples):
        before = time.perf_counter()
        render_chart(data)
        timings.append((time.perf_counter() - before) * 1000)
    return statistics.median(timings)


@contextmanager
def writes_timed(db: Database, into: list[float]) -> Iterator[None]:
    """Time each `db.session()` (a write transaction) opened while the block runs."""
    real: Callable[..., Any] = db.session

    @contextmanager
    def timed(**options: Any) -> Iterator[Any]:
        before = time.perf_counter()
        with real(**options) as session:
            yield session
        into.append((time.perf_counter() - before) * 1000)

    db.session = timed  # type: ignore[method-assign]
    try:
        yield
    finally:
        del db.session  # the class's method again


def subscribe(db: Database, since: datetime) -> None:
    """One overall and one country subscription, owed nothing before `since`."""
    with db.session() as session:
        for country, channel in CHANNELS.items():
            session.merge(
                DigestSubscription(
                    id=1 if country is None else 2,
                    channel_id=channel,
                    country=country,
                    local_time=SEND_AT,
                    active_since=since,
                    created_by="UBENCH",
                    created_at=since,
                )
            )


def time_digests(db: Database, config: CommandConfig, rows: int, last_row_at: datetime) -> DigestTiming:
    now = first_send_after(last_row_at, config)
    subscribe(db, now - timedelta(hours=1))  # earlier mornings are not owed: one digest each
    overall = build_ms(db, config, now, None, samples=5)
    country = build_ms(db, config, now, COUNTRY, samples=5)
    chart = chart_ms(db, config, now, samples=3)
    writes: list[float] = []
    with writes_timed(db, writes):
        before = time.perf_counter()
        report = send_due(db, config, now, grace=timedelta(hours=3), charts=True)
        whole = (time.perf_counter() - before) * 1000
    if len(report.sent) != len(CHANNELS):
        raise SystemExit(f"the digest pass sent {report.sent}, expected one digest per subscription")
    return DigestTiming(rows, overall, country, chart, whole, max(writes))


def describe(timing: DigestTiming) -> str:
    return (
        f"digest, {timing.rows:>9,} ledger rows: build {timing.overall_ms:7.1f} ms overall, "
        f"{timing.country_ms:6.1f} ms one country; chart {timing.chart_ms:6.1f} ms; a pass sending both "
        f"{timing.pass_ms:7.1f} ms, its longest write transaction {timing.longest_write_ms:5.1f} ms"
    )


MARKDOWN_HEADER = [
    "| ledger rows | build, overall ms | build, one country ms | chart ms | pass sending both ms "
    "| longest write transaction ms |",
    "|---:|---:|---:|---:|---:|---:|",
]


def markdown_row(timing: DigestTiming) -> str:
    return (
        f"| {timing.rows:,} | {timing.overall_ms:.1f} | {timing.country_ms:.1f} | {timing.chart_ms:.1f} "
        f"| {timing.pass_ms:.1f} | {timing.longest_write_ms:.1f} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", default="10000,100000,1000000", help="ledger sizes (comma-separated)")
    args = parser.parse_args(argv)
    from bench_dispatch import liaison
    from run import seed_movements, seeded_until

    with (
        tempfile.TemporaryDirectory() as tmp,
        liaison(f"sqlite:///{Path(tmp) / 'digest.db'}") as (runtime, _),
    ):
        seeded = 0
        for size in (int(s) for s in args.rows.split(",") if s):
            seed_movements(runtime.db, size, seeded)
            seeded = size
            print(describe(time_digests(runtime.db, runtime.config, size, seeded_until(size))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
