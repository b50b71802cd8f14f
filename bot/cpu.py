"""One CPU per serving process.

A Liaison process runs Python on one core at a time (the GIL), with its request threads taking turns
at it around every database round trip and every hand-off to and from the event loop. When those
threads float over several cores, each turn wakes a thread on another core: on the 2-CPU VM a third
of the process's CPU went to the kernel (19 context switches per `/arrivals` on PostgreSQL). Kept on
one core, the same turns are cheap (4.6 switches per request): at 100 clients one process served 874
req/s instead of 774 on PostgreSQL and 1,391 instead of 1,124 on SQLite, and two processes each on a
core of their own served 2,515 instead of 1,574 on SQLite (bench/RESULTS.md). What else runs on the
machine (PostgreSQL, the proxy) has the other cores.

So `liaison serve` keeps each process, and every thread it starts, on one CPU, a different one for each
Liaison process on the machine while there are CPUs to go round: a process claims a CPU by holding a
lock on a file named after it in the temporary directory (released by the kernel when the process
ends, however it ends). It looks first at the CPU it is running on, where the system just placed it
(so processes that cannot see each other's claims, in containers with temporary directories of their
own, still spread over the CPUs), then at the next ones. With more processes than CPUs, or a single
CPU, the process is left where the system puts it. `LIAISON_PIN_CPU=off` turns this off (e.g. where
an orchestrator pins processes itself).
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

_claims: list[IO[bytes]] = []  # the claimed CPU's lock file, open for the life of the process


def choose_cpu(allowed: Sequence[int], claim: Callable[[int], bool], start: int = 0) -> int | None:
    """The first of the `allowed` CPUs, from `start` on and round again, that `claim` takes; None when
    there is nothing to gain (one CPU) or every CPU is claimed by another process already."""
    if len(allowed) < 2:
        return None
    ordered = sorted(allowed)
    first = next((index for index, cpu in enumerate(ordered) if cpu >= start), 0)
    return next((cpu for cpu in ordered[first:] + ordered[:first] if claim(cpu)), None)


def current_cpu() -> int:
    """The CPU this process last ran on (Linux's /proc/self/stat, field 39), or 0 if unknown."""
    try:
        stat = Path("/proc/self/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[36])
    except (OSError, IndexError, ValueError):
        return 0


def claim_by_lock_file(directory: Path) -> Callable[[int], bool]:
    """Claims a CPU for this process by an exclusive lock on `directory/liaison-cpu-N.lock`."""

    def claim(cpu: int) -> bool:
        try:
            lock = (directory / f"liaison-cpu-{cpu}.lock").open("a+b")
        except OSError:  # another user's file, a read-only directory: not ours to take
            return False
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            return False
        _claims.append(lock)
        return True

    return claim


def pin_to_one_cpu(directory: Path | None = None) -> int | None:
    """Keep this process on one CPU of its own (see the module's docstring): call it before starting
    any thread, which then inherits it. Returns the CPU, or None where the process was left as is."""
    if not hasattr(os, "sched_setaffinity"):  # not Linux
        return None
    allowed = list(os.sched_getaffinity(0))
    claim = claim_by_lock_file(directory or Path(tempfile.gettempdir()))
    cpu = choose_cpu(allowed, claim, start=current_cpu())
    if cpu is None:
        log.info("not pinned to a CPU: %d allowed, none unclaimed", len(allowed))
        return None
    os.sched_setaffinity(0, {cpu})
    log.info("pinned to CPU %d of %d", cpu, len(allowed))
    return cpu
