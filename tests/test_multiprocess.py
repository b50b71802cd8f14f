"""Real `liaison serve` processes on one PostgreSQL database deliver each outbox message once: two of
them against a slow Slack, a SIGKILL in the middle of a fan-out, and a rotating token."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from tests.support.signing import SignedClient
from tests.support.slack_standin import SlackStandIn

REPO = Path(__file__).resolve().parent.parent
SIGNING_SECRET = "multiprocess-signing-secret-0123456789"
READY = re.compile(r"Liaison listening on (http://127\.0\.0\.1:\d+)")
COUNTRIES = [
    "poland", "spain", "italy", "germany", "belgium", "netherlands", "portugal", "greece", "austria",
    "sweden", "finland", "denmark", "norway", "ireland", "czechia", "slovakia", "hungary", "romania",
    "croatia", "estonia",
]  # fmt: skip
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


@dataclass
class ServeProcess:
    process: subprocess.Popen[str]
    url: str
    log: Path

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"liaison serve ignored SIGTERM\n{self.log.read_text()}") from None


def serve_env(slack: SlackStandIn, database_url: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SLACK_", "LIAISON_")) and name != "DATABASE_URL"
    }
    env.update(
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_BOT_TOKEN="xoxb-multiprocess",
        SLACK_API_URL=slack.base_url,
        DATABASE_URL=database_url,
        LIAISON_ADMINS="UADMIN",
        LIAISON_OUTBOX_POLL_SECONDS="0.05",
        LIAISON_OUTBOX_CHANNEL_INTERVAL_SECONDS="0",
        PYTHONUNBUFFERED="1",
    )
    return env


@contextmanager
def liaison_serve(env: dict[str, str], log: Path) -> Iterator[ServeProcess]:
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--port", "0"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    serving = ServeProcess(process, "", log)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the server printed its address, or exited
        match = READY.search(line)
        assert match, f"liaison serve did not start: {line!r}\n{log.read_text()}"
        serving.url = match.group(1)
        yield serving
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def outbox_rows(database_url: str) -> list[tuple[Any, ...]]:
    """(id, method, lane, status, attempts, slack_ts) of every outbox row, read from outside the bot."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT id, method, lane, status, attempts, slack_ts FROM outbox ORDER BY id"
        ).fetchall()
    return [tuple(row) for row in rows]


def poll_until(predicate: Callable[[], bool], timeout: float) -> None:
    """For state outside the stand-in (the database): look every 50 ms until it holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout:g} s")
        time.sleep(0.05)


def link_channels(client: SignedClient, slack: SlackStandIn, count: int) -> dict[str, str]:
    """Link `count` countries' channels; returns channel id by country."""
    channels = {
        country: f"C{index:04d}{country[:4].upper()}" for index, country in enumerate(COUNTRIES[:count])
    }
    for country, channel in channels.items():
        response = client.post_command("/liaison", f"link {country}", user_id="UADMIN", channel_id=channel)
        assert response.status_code == 200, response.text
        assert "liaison channel" in response.json()["text"], response.text
    assert len(slack.calls("conversations.info")) == count  # each link checks the bot is in the channel
    slack.clear()
    return channels


def raise_alert(client: SignedClient, count: int) -> None:
    response = client.post_command(
        "/alert", "raise urgence credible threat against the opening ceremony", user_id="UADMIN"
    )
    assert response.status_code == 200, response.text
    assert response.json()["response_type"] == "in_channel", response.text
    assert f"{count} liaison channels" in response.json()["text"]


def assert_each_channel_has_one_notice(slack: SlackStandIn, channels: dict[str, str]) -> None:
    for channel in channels.values():
        posted = slack.posted(channel)
        assert len(posted) == 1, (channel, slack.dump())
        assert posted[0]["blocks"][-1]["elements"][0]["value"] == "1"


def test_two_processes_and_a_slow_slack_deliver_each_notice_once(
    postgres_url: str, slack: SlackStandIn, tmp_path: Path
) -> None:
    slack.delay(3.0, "chat.postMessage")  # each post takes 3 s: longer than half a lease
    env = serve_env(slack, postgres_url)
    with ExitStack() as stack:
        first = stack.enter_context(liaison_serve(env, tmp_path / "a.log"))
        second = stack.enter_context(liaison_serve(env, tmp_path / "b.log"))
        client = stack.enter_context(SignedClient(first.url, SIGNING_SECRET))
        channels = link_channels(client, slack, len(COUNTRIES))
        raise_alert(client, len(COUNTRIES))

        slack.wait_for(lambda: all(slack.posted(c) for c in channels.values()), timeout=60)
        poll_until(lambda: {r[3] for r in outbox_rows(postgres_url)} == {"sent"}, timeout=30)
        exit_codes = [first.stop(), second.stop()]
        logs = [first.log.read_text(), second.log.read_text()]

    # Both processes are gone: what Slack received and what the database says are final.
    calls = slack.calls(include_failed=True)
    assert len(calls) == len(COUNTRIES), slack.dump()
    assert all(call.method == "chat.postMessage" and call.ok for call in calls)
    assert_each_channel_has_one_notice(slack, channels)
    assert slack.max_in_flight > 2  # channels are served in parallel

    rows = outbox_rows(postgres_url)
    assert sorted(lane for _, _, lane, _, _, _ in rows) == sorted(channels.values())
    assert {status for _, _, _, status, _, _ in rows} == {"sent"}
    assert {attempts for _, _, _, _, attempts, _ in rows} == {1}  # each claimed by one process, once
    assert len({ts for _, _, _, _, _, ts in rows}) == len(COUNTRIES)
    assert exit_codes == [0, 0], "\n".join(logs)  # SIGTERM is a clean shutdown
    assert "claim lost" not in "".join(logs)


def test_sigkill_in_the_middle_of_a_fan_out_loses_and_doubles_nothing(
    postgres_url: str, slack: SlackStandIn, tmp_path: Path
) -> None:
    slack.delay(2.0, "chat.postMessage", times=8)  # the first eight posts land, their answers never do
    env = serve_env(slack, postgres_url) | {
        "LIAISON_OUTBOX_LEASE_SECONDS": "3",
        "LIAISON_OUTBOX_SETTLE_SECONDS": "1",
        "LIAISON_OUTBOX_CONCURRENCY": "8",
    }
    with liaison_serve(env, tmp_path / "killed.log") as doomed:
        with SignedClient(doomed.url, SIGNING_SECRET) as client:
            channels = link_channels(client, slack, len(COUNTRIES))
            raise_alert(client, len(COUNTRIES))
        slack.wait_for(lambda: len(slack.calls("chat.postMessage")) >= 8, timeout=30)
        doomed.process.kill()  # SIGKILL: eight calls in flight, the rest queued
        doomed.process.wait()
    in_flight = {str(call.channel) for call in slack.calls("chat.postMessage")}
    assert len(in_flight) == 8

    started = time.monotonic()
    with liaison_serve(env, tmp_path / "restarted.log") as restarted:
        slack.wait_for(lambda: all(slack.posted(c) for c in channels.values()), timeout=30)
        poll_until(lambda: {r[3] for r in outbox_rows(postgres_url)} == {"sent"}, timeout=30)
        recovered_in = time.monotonic() - started
        assert restarted.stop() == 0

    assert_each_channel_has_one_notice(slack, channels)
    looked_up = {str(call.channel) for call in slack.calls("conversations.history")}
    assert looked_up == in_flight  # only the uncertain ones were checked, and found, not re-posted
    assert len(slack.calls("chat.postMessage")) == len(COUNTRIES)
    assert recovered_in < 20, recovered_in  # a 3 s lease, not a minute


def test_a_rotating_token_is_renewed_by_liaison_serve(
    postgres_url: str, slack: SlackStandIn, tmp_path: Path
) -> None:
    slack.rotate_tokens(client_id="111.222", client_secret="rotation-secret", refresh_token="xoxe-1-initial")
    env = serve_env(slack, postgres_url)
    del env["SLACK_BOT_TOKEN"]
    env |= {
        "SLACK_CLIENT_ID": "111.222",
        "SLACK_CLIENT_SECRET": "rotation-secret",
        "SLACK_REFRESH_TOKEN": "xoxe-1-initial",
    }
    with liaison_serve(env, tmp_path / "rotating.log") as served:
        with SignedClient(served.url, SIGNING_SECRET) as client:
            channels = link_channels(client, slack, 3)
            raise_alert(client, 3)
        slack.wait_for(lambda: all(slack.posted(c) for c in channels.values()), timeout=30)
        assert served.stop() == 0
        log = served.log.read_text()
    assert_each_channel_has_one_notice(slack, channels)
    assert {call.token for call in slack.calls("chat.postMessage")} == {"xoxe.xoxb-1-rotated-1"}
    assert slack.issued_tokens == 1
    assert "rotation-secret" not in log
    assert "xoxe" not in log  # no token, old or new, reaches the log
