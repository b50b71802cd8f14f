"""Files too large for an outbox row, stored in parts (storage.files), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select
from sqlmodel import col

from storage import files, outbox
from storage.db import Database
from storage.models import FilePart, OutboxMessage, OutboxStatus, StoredFile

NOW = datetime(2026, 7, 20, 6, 0, tzinfo=UTC)


@pytest.fixture
def db(migrated_database_url: str) -> Iterator[Database]:
    database = Database.from_url(migrated_database_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(files, "PART_SIZE", 10)
    return 10


def read(db: Database, key: str) -> bytes:
    with db.read_session() as session:
        return files.read(session, key)


def count(db: Database, table: type[StoredFile] | type[FilePart]) -> int:
    with db.read_session() as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.mark.parametrize("size", [0, 1, 9, 10, 11, 20, 95])
def test_a_file_reads_back_byte_for_byte_whatever_its_size(db: Database, small_parts: int, size: int) -> None:
    content = os.urandom(size)
    key = files.store(db, content, now=NOW)
    assert read(db, key) == content
    with db.read_session() as session:
        stored = session.get(StoredFile, key)
        assert stored is not None
        assert (stored.size, stored.parts) == (size, max(1, -(-size // small_parts)))
        parts = session.execute(select(FilePart.data).where(col(FilePart.file_key) == key)).scalars()
        assert max(len(part) for part in parts) <= small_parts  # no transaction carries more


def test_a_file_with_a_part_missing_is_never_sent_cut_short(db: Database, small_parts: int) -> None:
    key = files.store(db, b"0123456789" * 3, now=NOW)
    with db.session() as session:
        session.execute(delete(FilePart).where(col(FilePart.file_key) == key, col(FilePart.part) == 1))
    with pytest.raises(files.MissingFile, match="2 of 3 parts"):
        read(db, key)
    with pytest.raises(files.MissingFile, match="gone"):
        read(db, "0" * 32)


def queue_upload(db: Database, key: str) -> OutboxMessage:
    with db.session() as session:
        message = outbox.upload_file(
            session, user="U1", filename="a.csv", title="A", stored=key, now=NOW + timedelta(minutes=1)
        )
        session.expunge(message)
    return message


def set_status(db: Database, message: OutboxMessage, status: OutboxStatus) -> None:
    with db.session() as session:
        stored = session.get(OutboxMessage, message.id)
        assert stored is not None
        stored.status = status


def test_the_upload_of_a_stored_file_reads_it_from_the_database(db: Database, small_parts: int) -> None:
    key = files.store(db, b"entry,country\r\n1,PL\r\n", now=NOW)
    message = queue_upload(db, key)
    assert "PL" not in message.payload  # the content is not in the outbox row
    with db.read_session() as session:
        assert outbox.upload_content(session, outbox.payload_of(message)) == b"entry,country\r\n1,PL\r\n"
        stored = session.get(StoredFile, key)
        assert stored is not None
        assert stored.upload_id == message.id


def test_files_are_pruned_once_their_upload_is_done_and_orphans_after_a_day(
    db: Database, small_parts: int
) -> None:
    waiting, sent, failed = (files.store(db, b"x" * 25, now=NOW) for _ in range(3))
    orphan = files.store(db, b"y" * 25, now=NOW)  # an export cut off before it queued its uploads
    uploads = {key: queue_upload(db, key) for key in (waiting, sent, failed)}
    set_status(db, uploads[sent], OutboxStatus.SENT)
    set_status(db, uploads[failed], OutboxStatus.FAILED)

    assert files.prune(db, NOW + timedelta(hours=1)) == 2
    assert read(db, waiting) == b"x" * 25
    assert read(db, orphan) == b"y" * 25  # its export may still be finishing
    for gone in (sent, failed):
        with pytest.raises(files.MissingFile):
            read(db, gone)

    assert files.prune(db, NOW + files.ORPHANED_AFTER + timedelta(seconds=1)) == 1
    with pytest.raises(files.MissingFile):
        read(db, orphan)
    assert (count(db, StoredFile), count(db, FilePart)) == (1, 3)  # the waiting upload's file, whole

    set_status(db, uploads[waiting], OutboxStatus.SENT)
    assert files.prune(db, NOW + timedelta(days=2)) == 1
    assert (count(db, StoredFile), count(db, FilePart)) == (0, 0)
