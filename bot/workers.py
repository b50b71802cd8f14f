"""`liaison serve --workers N`: N serving processes behind one address.

The parent binds the listening socket once and starts N `liaison serve` processes that inherit it
(`--listen-fd`); the kernel hands each new connection to one of them. Each worker is a whole Liaison
(HTTP, outbox worker, scheduler): they share the database, where outbox messages and scheduled runs
are claimed row by row, so nothing is sent or counted twice. The parent only supervises: it says
where it listens once every worker is ready, passes SIGTERM/SIGINT on, and stops them all if one
dies (a process manager then restarts the whole).
"""

from __future__ import annotations

import logging
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import IO

log = logging.getLogger(__name__)

READY = re.compile(r"^Liaison worker (\d+) ready")
STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
BACKLOG = 2048


def ready_line(pid: int, host: str, port: int) -> str:
    """What a worker prints once it serves (the parent waits for one per worker)."""
    return f"Liaison worker {pid} ready on http://{host}:{port}"


def inherited_socket(fd: int) -> socket.socket:
    """The listening socket the parent passed down."""
    return socket.socket(fileno=fd)


def run_workers(*, host: str, port: int, workers: int, log_level: str) -> int:
    listener = socket.create_server((host, port), backlog=BACKLOG)
    listener.set_inheritable(True)
    bound_host, bound_port = listener.getsockname()[:2]
    stop = threading.Event()
    lines: queue.Queue[str] = queue.Queue()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping %d workers", signum, workers)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    command = [sys.executable, "-m", "bot.cli", "--log-level", log_level, "serve"]
    children = [
        subprocess.Popen(  # noqa: S603  (this interpreter, this program, arguments of our own)
            [*command, "--listen-fd", str(listener.fileno())],
            pass_fds=(listener.fileno(),),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    listener.close()  # the workers hold it now
    for child in children:
        assert child.stdout is not None
        threading.Thread(target=_forward, args=(child.stdout, lines), daemon=True).start()
    try:
        if not _wait_until_ready(children, lines, stop):
            return 1
        print(f"Liaison: {workers} worker processes", flush=True)
        print(f"Liaison listening on http://{bound_host}:{bound_port}", flush=True)
        while not stop.wait(0.5):
            dead = [child for child in children if child.poll() is not None]
            if dead:
                log.error("worker %s exited with %s; stopping the others", dead[0].pid, dead[0].returncode)
                return 1
        return 0
    finally:
        _stop_all(children)


def _forward(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.put(line)


def _wait_until_ready(
    children: Sequence[subprocess.Popen[str]], lines: queue.Queue[str], stop: threading.Event
) -> bool:
    ready: set[str] = set()
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while len(ready) < len(children):
        if stop.is_set():
            return False
        if any(child.poll() is not None for child in children):
            log.error("a worker exited while starting")
            return False
        if time.monotonic() > deadline:
            log.error("only %d of %d workers started", len(ready), len(children))
            return False
        try:
            match = READY.match(lines.get(timeout=0.2).strip())
        except queue.Empty:
            continue
        if match:
            ready.add(match.group(1))
    return True


def _stop_all(children: Sequence[subprocess.Popen[str]]) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for child in children:
        try:
            child.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            log.error("worker %s did not stop in time; killing it", child.pid)
            child.kill()
            child.wait()
