"""How long an alert notice takes to reach every liaison channel when each Slack call is slow.

    python bench/bench_fanout.py [--channels 46] [--latency 0.1] [--concurrency 8]
                                 [--database-url postgresql://...]

A temporary SQLite file (and optionally the given scratch PostgreSQL database) holds `--channels`
linked channels; one `/alert raise` is sent through the real Bolt app; the outbox worker then
delivers the notices to the Slack stand-in, which answers every chat.postMessage after
`--latency` seconds. Prints the wall-clock time from the first delivery round to the last notice
posted, the most calls in flight at once, and checks that every channel got exactly one notice.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.dispatch import run_command  # noqa: E402  (after the path is set)
from bot.runtime import build_runtime  # noqa: E402
from bot.settings import Settings  # noqa: E402
from commands import alert, liaison  # noqa: E402
from commands.common import Caller  # noqa: E402
from commands.countries import all_countries  # noqa: E402
from storage.clock import FrozenClock  # noqa: E402
from tests.support.slack_standin import SlackStandIn  # noqa: E402

ADMIN = "UADMIN"


def measure(database_url: str, channels: int, latency: float, concurrency: int) -> tuple[float, int]:
    with SlackStandIn() as slack:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            slack_bot_token="xoxb-bench",
            slack_api_url=slack.base_url,
            database_url=database_url,
            admins=[ADMIN],
            outbox_concurrency=concurrency,
            outbox_channel_interval_seconds=0,
        )
        runtime = build_runtime(settings, token="xoxb-bench", clock=FrozenClock(datetime.now(UTC)))
        runtime.db.migrate()
        try:
            links = [c.code for c in all_countries()[:channels]]
            for index, code in enumerate(links):
                caller = Caller(user_id=ADMIN, user_name="admin", channel_id=f"C{index:06d}B")
                run_command(runtime, liaison, caller, f"link {code}")
            caller = Caller(user_id=ADMIN, user_name="admin", channel_id="C0OPS")
            reply = run_command(runtime, alert, caller, "raise urgence benchmark notice")
            assert f"{channels} liaison channels" in reply.text, reply.text
            slack.delay(latency, "chat.postMessage")
            started = time.perf_counter()
            runtime.outbox.drain()
            elapsed = time.perf_counter() - started
            for index in range(channels):
                posted = slack.posted(f"C{index:06d}B")
                assert len(posted) == 1, (index, len(posted))
            return elapsed, slack.max_in_flight
        finally:
            runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=46)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds Slack takes per call")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--database-url", help="also measure this (scratch) PostgreSQL database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stores = {"sqlite file": f"sqlite:///{tmp}/bench.db"}
        if args.database_url:
            stores["postgresql"] = args.database_url
        print(
            f"notice to {args.channels} channels, {args.latency * 1000:.0f} ms per Slack call, "
            f"{args.concurrency} calls in flight at most"
        )
        for name, url in stores.items():
            elapsed, in_flight = measure(url, args.channels, args.latency, args.concurrency)
            serial = args.channels * args.latency
            print(
                f"  {name:12s} {elapsed:6.2f} s (one call at a time would take {serial:.1f} s); "
                f"{in_flight} calls in flight at most"
            )


if __name__ == "__main__":
    main()
