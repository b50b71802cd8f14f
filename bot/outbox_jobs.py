"""Work the outbox does after a command's acknowledgement, on the worker's thread (`JOBS`, by
outbox method). A job has two halves: `prepare` reads what it needs from one snapshot of the database
(`Database.read_session`, which never holds the writer's turn) however long that takes, and returns
the `finish` that queues the resulting Slack calls in the transaction marking the job done. So the
work is never done twice and never half: a worker that dies mid-way leaves the job to be taken over
when its lease lapses, with nothing queued.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from commands.common import plural
from storage import outbox
from storage.db import Database
from storage.exports import export_files

Finish = Callable[[Session, datetime], None]
Prepare = Callable[[Database, dict[str, Any]], Finish]


def prepare_export(db: Database, payload: dict[str, Any]) -> Finish:
    """`/liaison export`: the CSV files, read from one snapshot, uploaded to the requester's DM.

    Built here rather than in the command: on a ledger of a million rows that takes tens of seconds,
    which in the command's transaction held every other command back and outlasted Slack's 3 s."""
    with db.read_session() as session:
        files = export_files(
            session, ZoneInfo(str(payload["zone"])), payload.get("country"), str(payload["stamp"])
        )
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
                content=file.content,
                now=now,
                initial_comment=summary if index == 0 else None,
            )

    return finish


JOBS: dict[str, Prepare] = {outbox.BUILD_EXPORT: prepare_export}
