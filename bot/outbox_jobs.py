"""Work the outbox does after a command's acknowledgement (`jobs`, by outbox method). A job has two
halves: `prepare` reads what it needs from one snapshot of the database (`Database.read_session`,
which never holds the writer's turn) however long that takes, and returns the `finish` that queues
the resulting Slack calls in the transaction marking the job done. So the work is never done twice and
never half: a worker that dies mid-way leaves the job to be taken over when its lease lapses, with
nothing queued.

An export is built in a process of its own (`LIAISON_EXPORT_PROCESS`, on by default), at a lower
priority and free to use any CPU: built on the worker's thread it held the interpreter lock from the
process's command threads for as long as it took (seconds at 100,000 rows, tens of seconds at a
million), and every acknowledgement meanwhile waited its turn (bench/RESULTS.md).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from commands.common import plural
from storage import outbox
from storage.db import Database
from storage.exports import export_files
from storage.files import store as store_file

log = logging.getLogger(__name__)

Finish = Callable[[Session, datetime], None]
Prepare = Callable[[Database, dict[str, Any], datetime], Finish]


@dataclass(frozen=True)
class ExportedFile:
    """An export's file, stored (storage.files) under `key`."""

    filename: str
    title: str
    rows: int
    key: str


def prepare_export(db: Database, payload: dict[str, Any], now: datetime, *, apart: bool = True) -> Finish:
    """`/liaison export`: the CSV files, read from one snapshot, uploaded to the requester's DM.

    Built here rather than in the command: on a ledger of a million rows that takes tens of seconds,
    which in the command's transaction held every other command back and outlasted Slack's 3 s.
    `apart`: in a process of its own, where the database can be opened from another process. The
    files are stored in parts there too, so `finish` only queues their uploads."""
    zone, country, stamp = str(payload["zone"]), payload.get("country"), str(payload["stamp"])
    url = db.url_for_another_process() if apart else None
    if url is None:
        files = _export(db, zone, country, stamp, now)
    else:
        files = _in_a_process_of_its_own(partial(_export_at, url, zone, country, stamp, now))
    user, what = str(payload["user"]), str(payload["what"])
    summary = f":package: Liaison's export for {what}: " + ", ".join(
        f"`{file.filename}` ({plural(file.rows, 'row')})" for file in files
    )

    def finish(session: Session, now: datetime) -> None:
        for index, file in enumerate(files):
            outbox.upload_file(
                session,
                user=user,
                filename=file.filename,
                title=f"{file.title} — {what}",
                stored=file.key,
                now=now,
                initial_comment=summary if index == 0 else None,
            )

    return finish


def jobs(*, exports_apart: bool) -> dict[str, Prepare]:
    return {outbox.BUILD_EXPORT: partial(prepare_export, apart=exports_apart)}


JOB_METHODS = frozenset(jobs(exports_apart=True))  # outbox methods that are jobs of ours


def _export_at(url: str, zone: str, country: str | None, stamp: str, now: datetime) -> list[ExportedFile]:
    """Run in the export's own process: the database opened afresh."""
    db = Database.from_url(url)
    try:
        return _export(db, zone, country, stamp, now)
    finally:
        db.dispose()


def _export(db: Database, zone: str, country: str | None, stamp: str, now: datetime) -> list[ExportedFile]:
    """Read from one snapshot, then stored file by file."""
    with db.read_session() as session:
        built = export_files(session, ZoneInfo(zone), country, stamp)
    return [
        ExportedFile(file.filename, file.title, file.rows, store_file(db, file.content, now=now))
        for file in built
    ]


def _in_a_process_of_its_own(work: Callable[[], list[ExportedFile]]) -> list[ExportedFile]:
    # Spawned, not forked: the bot's process has threads (and connections) a fork would copy mid-use.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_in_the_background) as pool:
        return pool.submit(work).result()


def _in_the_background() -> None:
    """Below the commands: a lower priority, and any CPU (`liaison serve` keeps its own process, and
    so the children it starts, on one CPU: bot/cpu.py)."""
    try:
        os.nice(10)
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    except (AttributeError, OSError) as error:  # not on Linux, or a container's narrower CPU set
        log.debug("export process keeps its priority or CPUs: %s", error)
