"""Files too large for an outbox row (exports): stored in parts, each in a transaction of its own.

Queued inline, an export's files (~7 MB of CSV at 100,000 ledger rows, ~90 MB at a million) went
into the outbox row as base64 in one transaction: on SQLite, one turn of the only writer held every
command's commit back for ~200 ms (bench/RESULTS.md). Here no transaction carries more than one part.
A file is complete once its last part is committed; the upload queued for it afterwards
(`attach`, in the transaction that queues it) reads it back whole, and `prune` deletes it once that
upload is done — or, if no upload was ever queued for it (an export cut off before it finished),
after `ORPHANED_AFTER`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlmodel import Session, col

from storage.db import Database
from storage.models import FilePart, OutboxMessage, OutboxStatus, StoredFile

PART_SIZE = 256 * 1024  # a SQLite commit of 64 pages: ~1–2 ms in the writer's turn
ORPHANED_AFTER = timedelta(days=1)  # far longer than any export takes to build
PARTS_PER_PRUNE = 8  # parts deleted per transaction


class MissingFile(Exception):
    """The stored file is gone or incomplete: its upload can never be made."""


def store(db: Database, content: bytes, *, now: datetime) -> str:
    """Store `content` in parts, each committed on its own; returns the file's key."""
    key = uuid.uuid4().hex
    parts = max(1, -(-len(content) // PART_SIZE))  # an empty file is one empty part
    for index in range(parts):
        with db.session() as session:
            if index == 0:
                session.add(StoredFile(key=key, size=len(content), parts=parts, created_at=now))
                session.flush()  # the parts refer to it
            data = content[index * PART_SIZE : (index + 1) * PART_SIZE]
            session.add(FilePart(file_key=key, part=index, data=data))
    return key


def attach(session: Session, key: str, upload: OutboxMessage) -> None:
    """The file is `upload`'s: kept until that upload is done."""
    session.execute(update(StoredFile).where(col(StoredFile.key) == key).values(upload_id=upload.id))


def read(session: Session, key: str) -> bytes:
    """The file's whole content; MissingFile if it is not all there."""
    stored = session.get(StoredFile, key)
    if stored is None:
        raise MissingFile(f"stored file {key} is gone")
    query = select(col(FilePart.data)).where(col(FilePart.file_key) == key).order_by(col(FilePart.part))
    parts = list(session.execute(query).scalars())
    content = b"".join(parts)
    if len(parts) != stored.parts or len(content) != stored.size:
        raise MissingFile(f"stored file {key} is incomplete ({len(parts)} of {stored.parts} parts)")
    return content


def prune(db: Database, now: datetime) -> int:
    """Delete the files whose upload is done (sent, failed for good or superseded) and those no
    upload was queued for within ORPHANED_AFTER; a few parts per transaction. Returns files deleted."""
    upload_done = col(OutboxMessage.status).not_in((OutboxStatus.PENDING, OutboxStatus.SENDING))
    orphaned = col(StoredFile.upload_id).is_(None) & (col(StoredFile.created_at) < now - ORPHANED_AFTER)
    prunable = (
        select(col(StoredFile.key))
        .outerjoin(OutboxMessage, col(OutboxMessage.id) == col(StoredFile.upload_id))
        .where(or_(col(StoredFile.upload_id).is_not(None) & upload_done, orphaned))
    )
    with db.read_session() as session:
        keys = list(session.execute(prunable).scalars())
    for key in keys:
        _delete(db, key)
    return len(keys)


def _delete(db: Database, key: str) -> None:
    while True:
        with db.session() as session:
            batch = (
                select(col(FilePart.part))
                .where(col(FilePart.file_key) == key)
                .order_by(col(FilePart.part))
                .limit(PARTS_PER_PRUNE)
            )
            parts = list(session.execute(batch).scalars())
            if not parts:
                session.execute(delete(StoredFile).where(col(StoredFile.key) == key))
                return
            session.execute(
                delete(FilePart).where(col(FilePart.file_key) == key, col(FilePart.part).in_(parts))
            )
