"""`liaison serve --workers 2`: two processes behind one address, on SQLite and PostgreSQL; every
acknowledged arrival is stored once and counted once; SIGTERM stops them all."""

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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage import totals
from storage.db import Database
from storage.models import Movement
from tests.support.signing import SignedClient
from tests.support.slack_standin import SlackStandIn

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"^Liaison listening on (http://127\.0\.0\.1:\d+)$")
WORKER_READY = re.compile(r"^Liaison worker (\d+) ready on http://127\.0\.0\.1:\d+$")
ARRIVALS = 60


def test_two_workers_share_one_port_and_count_each_arrival_once(
    database_url: str, slack: SlackStandIn, tmp_path: Path
) -> None:
    secret = "sig-" + secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LIAISON_"))}
    env.update(
        DATABASE_URL=database_url,
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        TMPDIR=str(tmp_path),  # where the workers claim their CPUs: no other Liaison on the machine counts
        SLACK_SIGNING_SECRET=secret,
        SLACK_BOT_TOKEN="xoxb-" + secrets.token_hex(8),
        SLACK_API_URL=slack.base_url,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--port", "0", "--workers", "2"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout or []], daemon=True).start()
    try:
        url, workers = _wait_for_listening(lines)
        assert len(workers) == 2  # two processes, each saying it serves
        for pid in workers:
            os.kill(pid, 0)  # alive
        if len(os.sched_getaffinity(0)) >= 2:  # each worker on a CPU of its own (bot/cpu.py)
            cpus = [os.sched_getaffinity(pid) for pid in workers]
            assert [len(cpu) for cpu in cpus] == [1, 1], cpus
            assert cpus[0] != cpus[1]

        def arrive(n: int) -> str:
            with SignedClient(url, secret) as client:
                response = client.post_command("/arrivals", "poland 1", user_id=f"U{n:08d}")
                assert response.status_code == 200
                return str(response.json()["text"])

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(arrive, range(ARRIVALS)))
        assert all("Poland: 1 arrived" in answer for answer in answers), answers[:3]

        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        for pid in workers:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)  # stopped with the parent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)

    db = Database.from_url(database_url)
    try:
        with db.session() as session:
            assert session.execute(select(func.count()).select_from(Movement)).scalar_one() == ARRIVALS
            assert totals.deployment_status(session)["PL"].total.arrived == ARRIVALS
            assert totals.mismatches(session) == []
    finally:
        db.dispose()


def _wait_for_listening(lines: queue.Queue[str]) -> tuple[str, set[int]]:
    workers: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1).strip()
        except queue.Empty:
            continue
        if match := WORKER_READY.match(line):
            workers.add(int(match.group(1)))
        if match := LISTENING.match(line):
            return match.group(1), workers
    pytest.fail("liaison serve --workers 2 did not say it was listening")
