"""The `liaison` command as a user runs it: real subprocesses, real HTTP, the Slack stand-in."""

from __future__ import annotations

import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import IO

import httpx
import pytest
from sqlalchemy import func, select

from storage.db import Database
from storage.models import Movement
from tests.support.signing import SignedClient
from tests.support.slack_standin import SlackStandIn

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"^Liaison listening on (http://127\.0\.0\.1:(\d+))$")
STARTUP_TIMEOUT = 30.0


def liaison(*args: str) -> list[str]:
    return [sys.executable, "-m", "bot.cli", *args]


def base_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("SLACK_", "LIAISON_"))}
    env.pop("DATABASE_URL", None)
    env.update({"DATABASE_URL": database_url, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}, **extra)
    return env


@dataclass
class Served:
    process: subprocess.Popen[str]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    url: str = ""

    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)


def _pump(stream: IO[str], sink: list[str], lines: queue.Queue[str] | None) -> None:
    for line in stream:
        sink.append(line)
        if lines is not None:
            lines.put(line)


@contextmanager
def serving(env: dict[str, str], cwd: Path, *args: str) -> Iterator[Served]:
    """`liaison serve --port 0`, running until the block ends (stopped by the test, or killed here)."""
    process = subprocess.Popen(
        liaison(*args, "serve", "--port", "0"),
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    served = Served(process)
    assert process.stdout is not None
    assert process.stderr is not None
    pumps = [
        threading.Thread(target=_pump, args=(process.stdout, served.stdout, served.lines), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, served.stderr, None), daemon=True),
    ]
    for pump in pumps:
        pump.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not served.url:
            try:
                line = served.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                pytest.fail(f"liaison serve did not say it was listening:\n{served.output()}")
            match = LISTENING.match(line.strip())
            if match:
                served.url = match.group(1)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        for pump in pumps:
            pump.join(5)


def count_movements(database_url: str) -> int:
    db = Database.from_url(database_url)
    try:
        with db.session() as session:
            return int(session.execute(select(func.count()).select_from(Movement)).scalar_one())
    finally:
        db.dispose()


# -- serve ----------------------------------------------------------------------------------------


def test_serve_answers_slack_and_stops_cleanly(tmp_path: Path, slack: SlackStandIn) -> None:
    signing_secret = "sig-" + secrets.token_hex(16)
    bot_token = "xoxb-" + secrets.token_hex(16)
    database_url = f"sqlite:///{tmp_path / 'served.db'}"
    env = base_env(
        database_url,
        SLACK_SIGNING_SECRET=signing_secret,
        SLACK_BOT_TOKEN=bot_token,
        SLACK_API_URL=slack.base_url,
        LIAISON_OUTBOX_POLL_SECONDS="0.05",
        LIAISON_OUTBOX_CHANNEL_INTERVAL_SECONDS="0",
    )
    with serving(env, tmp_path, "--log-level", "DEBUG") as served:
        assert httpx.get(f"{served.url}/healthz", timeout=5).status_code == 200

        with SignedClient(served.url, signing_secret) as client:
            response = client.post_command("/arrivals", "poland 40", response_url=slack.response_url("cmd"))
            assert response.status_code == 200
            body = response.json()
            assert body["response_type"] == "in_channel"
            assert "Poland: 40 arrived" in body["text"]

            with SignedClient(served.url, "a-forged-secret") as forger:
                assert forger.post_command("/arrivals", "poland 999").status_code == 401

            event = {"type": "app_home_opened", "user": "U0LIAISON1", "tab": "home", "event_ts": "1.0"}
            assert client.post_event(event, event_id="Ev0CLI").status_code == 200
            # Delivered by the server's own outbox thread, after the ack.
            [published] = slack.wait_for_calls("views.publish", 1)
            assert published.token == bot_token
            assert "*40 on duty*" in str(published.params["view"])

        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(15) == 0

    assert count_movements(database_url) == 1
    output = served.output()
    assert signing_secret not in output
    assert bot_token not in output
    assert bot_token[5:] not in output


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs (Linux)"
)
@pytest.mark.parametrize(("setting", "pinned"), [("on", True), ("off", False)])
def test_serve_keeps_to_one_cpu_unless_told_not_to(tmp_path: Path, setting: str, pinned: bool) -> None:
    allowed = os.sched_getaffinity(0)
    env = base_env(
        f"sqlite:///{tmp_path / 'pinned.db'}",
        SLACK_SIGNING_SECRET="sig-" + secrets.token_hex(16),
        SLACK_BOT_TOKEN="xoxb-" + secrets.token_hex(16),
        SLACK_API_URL="http://127.0.0.1:9/api/",
        LIAISON_SCHEDULER="off",
        LIAISON_PIN_CPU=setting,
        TMPDIR=str(tmp_path),  # where CPUs are claimed: no other Liaison on the machine counts
    )
    with serving(env, tmp_path) as served:
        cpus = os.sched_getaffinity(served.process.pid)
        threads = [int(task.name) for task in Path(f"/proc/{served.process.pid}/task").iterdir()]
        if pinned:
            assert len(cpus) == 1
            assert cpus <= allowed
            assert {frozenset(os.sched_getaffinity(thread)) for thread in threads} == {frozenset(cpus)}
            assert any((tmp_path / f"liaison-cpu-{cpu}.lock").exists() for cpu in cpus)
        else:
            assert cpus == allowed


def test_serve_refuses_to_start_without_the_signing_secret(tmp_path: Path) -> None:
    bot_token = "xoxb-" + secrets.token_hex(16)
    env = base_env(f"sqlite:///{tmp_path / 'x.db'}", SLACK_BOT_TOKEN=bot_token)

    result = subprocess.run(
        liaison("serve", "--port", "0"), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    assert "SLACK_SIGNING_SECRET must be set" in result.stderr
    assert "SLACK_BOT_TOKEN" not in result.stderr.split("must be set")[0]  # the token is there
    assert "Liaison listening" not in result.stdout
    assert bot_token not in result.stdout + result.stderr
    assert not (tmp_path / "x.db").exists()  # it stopped before touching the database


def test_serve_names_every_missing_secret(tmp_path: Path) -> None:
    result = subprocess.run(
        liaison("serve"),
        env=base_env(f"sqlite:///{tmp_path / 'x.db'}"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN must be set" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_configuration_is_explained(tmp_path: Path) -> None:
    env = base_env(f"sqlite:///{tmp_path / 'x.db'}", LIAISON_TIMEZONE="Mars/Olympus_Mons")
    result = subprocess.run(
        liaison("migrate"), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "unknown time zone 'Mars/Olympus_Mons'" in result.stderr
    assert "Traceback" not in result.stderr


def test_liaison_console_script_is_installed() -> None:
    [script] = [ep for ep in entry_points(group="console_scripts") if ep.name == "liaison"]
    assert script.value == "bot.cli:main"


# -- shell ----------------------------------------------------------------------------------------


def run_shell(
    tmp_path: Path, lines: str, *args: str, database: str = "shell.db"
) -> subprocess.CompletedProcess[str]:
    env = base_env(f"sqlite:///{tmp_path / database}")
    return subprocess.run(
        liaison("shell", *args),
        input=lines,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_shell_records_an_arrival_and_shows_the_deployment(tmp_path: Path) -> None:
    result = run_shell(tmp_path, "/arrivals poland 40\n/deployment poland\n:quit\n")

    assert result.returncode == 0, result.stderr
    assert "[everyone in the channel sees]" in result.stdout
    assert "Poland: 40 arrived" in result.stdout
    assert "Poland — deployment" in result.stdout
    assert "*On duty*: 40" in result.stdout
    assert count_movements(f"sqlite:///{tmp_path / 'shell.db'}") == 1


def test_shell_shows_errors_and_ends_at_end_of_input(tmp_path: Path) -> None:
    result = run_shell(tmp_path, "/arrivals polnad 40\n/nope\n")

    assert result.returncode == 0, result.stderr
    assert "[only you see]" in result.stdout
    assert "I don't know the country `polnad`." in result.stdout
    assert "Did you mean *Poland*" in result.stdout
    assert "Unknown command /nope." in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_shell_demo_shows_46_countries(tmp_path: Path) -> None:
    result = run_shell(tmp_path, "/deployment\n:quit\n", "--demo")

    assert result.returncode == 0, result.stderr
    assert "Loaded the demo: 46 countries" in result.stdout
    assert "Deployment — all countries" in result.stdout
    assert "· 46 countries" in result.stdout


def test_demo_data_loads_once(tmp_path: Path) -> None:
    env = base_env(f"sqlite:///{tmp_path / 'demo.db'}")

    first = subprocess.run(
        liaison("demo-data"), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    second = subprocess.run(
        liaison("demo-data"), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    assert first.returncode == 0, first.stderr
    assert "Loaded the demo: 46 countries" in first.stdout
    assert second.returncode == 1
    assert "already holds" in second.stderr
    assert "--force" in second.stderr
    assert "Traceback" not in second.stderr
    assert count_movements(f"sqlite:///{tmp_path / 'demo.db'}") == int(
        re.search(r"\((\d+) movements\)", first.stdout).group(1)  # type: ignore[union-attr]
    )


def test_socket_mode_needs_no_signing_secret_and_stops_on_sigterm(
    tmp_path: Path, slack: SlackStandIn
) -> None:
    # Slack hands out a WebSocket URL; nothing listens there, so the client keeps reconnecting.
    slack.set_response("apps.connections.open", {"ok": True, "url": "ws://127.0.0.1:9/link"})
    env = base_env(
        f"sqlite:///{tmp_path / 'sm.db'}",
        SLACK_BOT_TOKEN="xoxb-" + secrets.token_hex(8),
        SLACK_APP_TOKEN="xapp-" + secrets.token_hex(8),
        SLACK_API_URL=slack.base_url,
    )
    process = subprocess.Popen(
        liaison("serve", "--socket-mode"),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "Liaison connected over Socket Mode"
        slack.wait_for_calls("apps.connections.open", 1, timeout=STARTUP_TIMEOUT)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=STARTUP_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "signal 15: shutting down" in stderr
    assert "SLACK_SIGNING_SECRET" not in stderr


def test_socket_mode_names_the_app_token_not_the_signing_secret(tmp_path: Path) -> None:
    env = base_env(f"sqlite:///{tmp_path / 'x.db'}", SLACK_BOT_TOKEN="xoxb-1")
    result = subprocess.run(
        liaison("serve", "--socket-mode"), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "SLACK_APP_TOKEN must be set" in result.stderr
    assert "SLACK_SIGNING_SECRET" not in result.stderr
