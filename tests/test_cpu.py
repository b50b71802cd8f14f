"""One CPU per serving process (bot/cpu.py): each Liaison process on the machine claims a CPU of its
own while there are CPUs to go round, and every thread it starts afterwards stays on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cpu import choose_cpu, claim_by_lock_file, current_cpu

ROOT = Path(__file__).resolve().parent.parent


def test_the_first_cpu_no_other_process_claimed_is_chosen_from_where_the_process_runs() -> None:
    taken = {0, 1}
    assert choose_cpu([3, 0, 2, 1], lambda cpu: cpu not in taken) == 2
    assert choose_cpu([3, 0, 2, 1], lambda cpu: cpu not in taken, start=3) == 3
    assert choose_cpu([3, 0, 2, 1], lambda cpu: cpu not in {3, 0}, start=3) == 1  # round again
    assert choose_cpu([0, 2, 4], lambda _cpu: True, start=3) == 4


def test_nothing_is_chosen_with_a_single_cpu_or_when_every_cpu_is_claimed() -> None:
    assert choose_cpu([5], lambda _cpu: True) is None
    assert choose_cpu([0, 1], lambda _cpu: False) is None


def test_two_processes_claiming_in_one_directory_get_different_cpus(tmp_path: Path) -> None:
    """A claim is an exclusive lock on the CPU's file: a second claimant (here a second open file,
    which conflicts like another process) is refused it and takes the next CPU."""
    first, second, third = (claim_by_lock_file(tmp_path) for _ in range(3))
    assert choose_cpu([0, 1], first) == 0
    assert choose_cpu([0, 1], second) == 1
    assert choose_cpu([0, 1], third) is None


def test_a_file_that_cannot_be_opened_is_not_claimed(tmp_path: Path) -> None:
    (tmp_path / "liaison-cpu-0.lock").mkdir()  # not a file: opening it fails
    assert choose_cpu([0, 1], claim_by_lock_file(tmp_path)) == 1


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="CPU affinity is Linux's")
def test_a_pinned_process_and_the_threads_it_starts_stay_on_its_cpu(tmp_path: Path) -> None:
    allowed = os.sched_getaffinity(0)
    script = (
        "import json, os, threading, pathlib\n"
        "from bot.cpu import pin_to_one_cpu\n"
        f"cpu = pin_to_one_cpu(pathlib.Path({str(tmp_path)!r}))\n"
        "seen = []\n"
        "thread = threading.Thread(target=lambda: seen.append(sorted(os.sched_getaffinity(0))))\n"
        "thread.start(); thread.join()\n"
        "print(json.dumps({'cpu': cpu, 'process': sorted(os.sched_getaffinity(0)), 'thread': seen[0]}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    pinned = json.loads(result.stdout)
    if len(allowed) < 2:
        assert pinned == {"cpu": None, "process": sorted(allowed), "thread": sorted(allowed)}
        return
    assert pinned["cpu"] in allowed
    assert pinned["process"] == pinned["thread"] == [pinned["cpu"]]


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="CPU affinity is Linux's")
def test_the_cpu_a_process_runs_on_is_read_from_linux() -> None:
    assert current_cpu() in os.sched_getaffinity(0)
