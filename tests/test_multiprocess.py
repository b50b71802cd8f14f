"""Two real `liaison serve` processes on one PostgreSQL database deliver each outbox message once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
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


def test_two_processes_deliver_each_notice_once(
    postgres_url: str, slack: SlackStandIn, tmp_path: Path
) -> None:
    env = serve_env(slack, postgres_url)
    channels = {country: f"C{index:04d}{country[:4].upper()}" for index, country in enumerate(COUNTRIES)}
    with ExitStack() as stack:
        first = stack.enter_context(liaison_serve(env, tmp_path / "a.log"))
        second = stack.enter_context(liaison_serve(env, tmp_path / "b.log"))
        client = stack.enter_context(SignedClient(first.url, SIGNING_SECRET))

        for country, channel in channels.items():
            response = client.post_command(
                "/liaison", f"link {country}", user_id="UADMIN", channel_id=channel
            )
            assert response.status_code == 200, response.text
            assert "liaison channel" in response.json()["text"], response.text
        assert len(slack.calls("conversations.info")) == 20  # each link checks the bot is in the channel
        slack.clear()
        response = client.post_command(
            "/alert", "raise urgence credible threat against the opening ceremony", user_id="UADMIN"
        )
        assert response.status_code == 200, response.text
        assert response.json()["response_type"] == "in_channel", response.text
        assert "20 liaison channels" in response.json()["text"]

        slack.wait_for_calls("chat.postMessage", 20, timeout=30)
        assert len(slack.calls(include_failed=True)) == 20

        exit_codes = [first.stop(), second.stop()]
        logs = [first.log.read_text(), second.log.read_text()]

    # Both processes are gone: what Slack received and what the database says are final.
    calls = slack.calls(include_failed=True)
    assert len(calls) == 20, slack.dump()
    assert all(call.method == "chat.postMessage" and call.ok for call in calls)
    assert sorted(str(call.channel) for call in calls) == sorted(channels.values())
    for call in calls:
        assert call.params["blocks"][-1]["elements"][0]["value"] == "1"

    rows = outbox_rows(postgres_url)
    assert len(rows) == 20
    assert sorted(lane for _, _, lane, _, _, _ in rows) == sorted(channels.values())
    assert {status for _, _, _, status, _, _ in rows} == {"sent"}
    assert {attempts for _, _, _, _, attempts, _ in rows} == {1}  # each claimed by one process, once
    assert all(ts for _, _, _, _, _, ts in rows)
    assert len({ts for _, _, _, _, _, ts in rows}) == 20
    assert exit_codes == [0, 0], "\n".join(logs)  # SIGTERM is a clean shutdown
