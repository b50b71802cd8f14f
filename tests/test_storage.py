"""Storage on SQLite and on a real PostgreSQL server: migrations, the ledger's aggregates."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, func, inspect, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, SQLModel, col

import storage.models  # noqa: F401  (every table on the metadata)
from storage import ledger
from storage.db import Database, alembic_config, normalize_database_url
from storage.ledger import Bucket
from storage.models import Movement, MovementKind, Pledge, is_modelled

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 7, 20, 7, 0, tzinfo=UTC)
LEDGER_TABLES = {"movement", "pledge", "command_log", "pending_command", "processed_event", "outbox"}


@pytest.fixture
def db(migrated_database_url: str) -> Iterator[Database]:
    database = Database.from_url(migrated_database_url)
    database.migrate()
    try:
        yield database
    finally:
        database.dispose()


def head_revision(database: Database) -> str | None:
    return ScriptDirectory.from_config(alembic_config(database.engine)).get_current_head()


def current_revision(database: Database) -> str | None:
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


# -- migrations -----------------------------------------------------------------------------------


def test_migrations_run_from_empty_and_are_idempotent(database_url: str) -> None:
    database = Database.from_url(database_url)
    try:
        assert current_revision(database) is None
        database.migrate()
        tables = set(inspect(database.engine).get_table_names())
        assert tables >= LEDGER_TABLES | {"alembic_version"}
        assert current_revision(database) == head_revision(database)

        with database.session() as session:
            session.add(movement("PL", MovementKind.ARRIVAL, 40))
        database.migrate()  # a restart: nothing to do, nothing lost
        assert set(inspect(database.engine).get_table_names()) == tables
        assert current_revision(database) == head_revision(database)
        with database.session() as session:
            assert ledger.on_duty(session, "PL", None) == 40
    finally:
        database.dispose()


def test_schema_can_be_taken_down_and_rebuilt(db: Database) -> None:
    config = alembic_config(db.engine)
    command.downgrade(config, "base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    command.upgrade(config, "head")
    assert current_revision(db) == head_revision(db)


# storage.models.SERVER_KEPT_COLUMNS: PostgreSQL's `xid8`, which SQLAlchemy does not know by name.
@pytest.mark.filterwarnings("ignore:Did not recognize type 'xid8':sqlalchemy.exc.SAWarning")
def test_alembic_head_matches_the_models(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": is_modelled}
        )
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == [], "models and migrations differ; add a migration:\n" + "\n".join(
        map(str, differences)
    )


def test_processes_starting_together_migrate_once(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "migrate"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outcomes = [(process.wait(60), *process.communicate()) for process in processes]
    for code, out, err in outcomes:
        assert code == 0, err
        assert "Database schema is up to date." in out
    database = Database.from_url(database_url)
    try:
        assert current_revision(database) == head_revision(database)
    finally:
        database.dispose()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@db:5432/liaison", "postgresql+psycopg://u:p@db:5432/liaison"),
        ("postgres://u:p@db/liaison", "postgresql+psycopg://u:p@db/liaison"),
        ("postgresql+psycopg://u@db/x", "postgresql+psycopg://u@db/x"),
        ("sqlite:///liaison.db", "sqlite:///liaison.db"),
    ],
)
def test_usual_database_urls_are_accepted(url: str, expected: str) -> None:
    assert normalize_database_url(url) == expected


# -- the ledger -----------------------------------------------------------------------------------


def movement(
    country: str,
    kind: MovementKind,
    count: int,
    capability: str | None = None,
    *,
    at: datetime = START,
    by: str = "U0LIAISON1",
    reverses: int | None = None,
) -> Movement:
    return Movement(
        country=country,
        kind=kind,
        count=count,
        capability=capability,
        recorded_by=by,
        channel_id="C0POLAND",
        command_text=f"/{kind.value}s {country} {count}",
        created_at=at,
        reverses_id=reverses,
    )


def pledge(country: str, headcount: int, capability: str | None = None) -> Pledge:
    return Pledge(
        country=country,
        capability=capability,
        headcount=headcount,
        recorded_by="UADMIN",
        channel_id="C0OPS",
        command_text=f"/pledge {country} {headcount}",
        created_at=START,
    )


def add(session: Session, *rows: Any) -> None:
    for row in rows:
        session.add(row)
        session.flush()  # ids in insertion order: the latest pledge is the current one


def test_deployment_status_aggregates(db: Database) -> None:
    with db.session() as session:
        add(session, pledge("PL", 100), pledge("PL", 20, "eod"), pledge("DE", 50), pledge("PL", 120))
        add(session, pledge("PL", 0, "eod"))  # withdrawn
        ten = movement("PL", MovementKind.ARRIVAL, 10)
        add(
            session,
            movement("PL", MovementKind.ARRIVAL, 40),
            ten,
            movement("PL", MovementKind.ARRIVAL, 12, "eod"),
            movement("PL", MovementKind.DEPARTURE, 5),
            movement("DE", MovementKind.ARRIVAL, 10, "dog-team"),
        )
        add(session, movement("PL", MovementKind.ARRIVAL, -10, reverses=ten.id))  # an undo

    with db.session() as session:
        everyone = ledger.deployment_status(session)
        poland = ledger.deployment_status(session, "PL")
        assert set(everyone) == {"PL", "DE"}
        assert everyone["PL"].by_capability == {None: Bucket(120, 40, 5), "eod": Bucket(0, 12, 0)}
        assert everyone["DE"].by_capability == {None: Bucket(50, 0, 0), "dog-team": Bucket(0, 10, 0)}
        assert poland == {"PL": everyone["PL"]}
        total = everyone["PL"].total
        assert (total.pledged, total.arrived, total.departed, total.on_duty, total.gap) == (
            120,
            52,
            5,
            47,
            73,
        )
        assert total.fill_rate == pytest.approx(47 / 120)
        assert ledger.on_duty(session, "PL", None) == 35
        assert ledger.on_duty(session, "PL", "eod") == 12
        assert ledger.on_duty(session, "FR", None) == 0
        current = ledger.current_pledge(session, "PL", None)
        assert current is not None
        assert current.headcount == 120
        assert ledger.current_pledge(session, "FR", None) is None
        assert ledger.deployment_status(session, "FR") == {}


def test_status_is_two_queries_whatever_the_number_of_rows(db: Database) -> None:
    with db.session() as session:
        session.add_all(
            movement(code, MovementKind.ARRIVAL, 1, cap, at=START + timedelta(seconds=n))
            for n, (code, cap) in enumerate(
                (code, cap)
                for code in ("PL", "DE", "IT", "ES")
                for cap in (None, "eod", "ct")
                for _ in range(100)
            )
        )
        session.add_all(pledge(code, 500) for code in ("PL", "DE", "IT", "ES"))

    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with db.session() as session:
            status = ledger.deployment_status(session)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, selects
    assert all("GROUP BY" in s.upper() for s in selects)
    assert status["PL"].total == Bucket(500, 300, 0)
    assert status["ES"].by_capability["eod"] == Bucket(0, 100, 0)


def arrived(session: Session) -> int:
    return int(session.execute(select(func.coalesce(func.sum(col(Movement.count)), 0))).scalar_one())


def test_a_report_reads_one_snapshot_and_never_holds_up_a_command(db: Database) -> None:
    with db.session() as session:
        add(session, movement("PL", MovementKind.ARRIVAL, 5))
    outcome: list[object] = []

    def command_meanwhile() -> None:
        try:
            with db.request_session() as session:  # gives up after the request's lock timeout
                add(session, movement("PL", MovementKind.ARRIVAL, 3, at=START + timedelta(minutes=1)))
            outcome.append("committed")
        except Exception as error:
            outcome.append(error)

    with db.read_session() as report:
        assert arrived(report) == 5
        command = threading.Thread(target=command_meanwhile)
        command.start()
        command.join(10)
        assert outcome == ["committed"]  # not "database is locked" after waiting for the report
        assert arrived(report) == 5  # the report's snapshot, from start to end
    with db.read_session() as later:
        assert arrived(later) == 8


def test_a_report_cannot_write(db: Database) -> None:
    with pytest.raises(DBAPIError), db.read_session() as report:
        add(report, movement("PL", MovementKind.ARRIVAL, 5))
    with db.session() as session:
        assert arrived(session) == 0


def test_movements_of_today_and_the_callers_last_entry(db: Database) -> None:
    with db.session() as session:
        old = movement("PL", MovementKind.ARRIVAL, 1, at=START - timedelta(days=1))
        first = movement("PL", MovementKind.ARRIVAL, 2, at=START)
        other = movement("DE", MovementKind.ARRIVAL, 3, at=START + timedelta(minutes=1), by="U0OTHER")
        departure = movement("PL", MovementKind.DEPARTURE, 1, at=START + timedelta(minutes=2))
        add(session, old, first, other, departure)
        undo = movement("PL", MovementKind.ARRIVAL, -2, at=START + timedelta(minutes=3), reverses=first.id)
        add(session, undo)

    with db.session() as session:
        assert [m.count for m in ledger.movements_since(session, START, 10)] == [-2, 1, 3, 2]
        assert [m.count for m in ledger.movements_since(session, START, 2)] == [-2, 1]
        assert ledger.count_movements_since(session, START) == 4
        last = ledger.last_entry_by(session, "U0LIAISON1", MovementKind.ARRIVAL)
        assert last is not None
        assert last.id == first.id  # an undo is not an entry of its own
        assert first.id is not None
        reversal = ledger.reversal_of(session, first.id)
        assert reversal is not None
        assert reversal.id == undo.id
        assert ledger.last_entry_by(session, "U0NOBODY", MovementKind.ARRIVAL) is None
        stored = session.get(Movement, first.id)
        assert stored is not None
        assert stored.created_at == START
        assert stored.created_at.tzinfo is not None


def test_an_entry_can_be_reversed_only_once(db: Database) -> None:
    with db.session() as session:
        entry = movement("PL", MovementKind.ARRIVAL, 40)
        add(session, entry)
        add(session, movement("PL", MovementKind.ARRIVAL, -40, reverses=entry.id))
    with pytest.raises(IntegrityError), db.session() as session:
        add(session, movement("PL", MovementKind.ARRIVAL, -40, reverses=entry.id))
    with db.session() as session:
        assert ledger.on_duty(session, "PL", None) == 0


def test_a_failed_unit_of_work_leaves_nothing_behind(db: Database) -> None:
    def failing_unit_of_work() -> None:
        with db.session() as session:
            add(session, movement("PL", MovementKind.ARRIVAL, 40), pledge("PL", 100))
            raise RuntimeError("the handler failed")

    with pytest.raises(RuntimeError):
        failing_unit_of_work()
    with db.session() as session:
        assert ledger.deployment_status(session) == {}
