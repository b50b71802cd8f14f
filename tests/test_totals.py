"""The running totals per country × capability always equal the ledgers' aggregate: after any
sequence of arrivals, departures, undos and pledges typed as commands (hypothesis), after the
migration that fills them from an existing ledger, and as `liaison doctor` checks. So does each
country's last movement as the digest finds it (through the totals' countries)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update
from sqlmodel import col

from bot.dispatch import run_command
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from commands import arrivals, departures, pledge
from commands.common import Caller
from storage import digests, ledger, totals
from storage.clock import FrozenClock
from storage.db import Database, alembic_config
from storage.models import CommandLog, DeploymentTotal, Movement, PendingCommand, Pledge

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 7, 20, 7, 0, tzinfo=UTC)
USERS = ("U0OPSONE", "U0OPSTWO")
COUNTRIES = ("PL", "DE", "fr")
CAPABILITIES = (None, "eod", "dog-team")

Step = tuple[str, str, int, str | None, int]  # (what, country, number, capability, user index)

steps = st.tuples(
    st.sampled_from(("arrive", "arrive", "depart", "undo-arrival", "undo-departure", "pledge", "wait")),
    st.sampled_from(COUNTRIES),
    st.integers(min_value=0, max_value=60),
    st.sampled_from(CAPABILITIES),
    st.integers(min_value=0, max_value=len(USERS) - 1),
)


def command_for(step: Step) -> tuple[object, str]:
    what, country, number, capability, _user = step
    tail = f" {capability}" if capability else ""
    if what == "arrive":
        return arrivals, f"{country} {max(number, 1)}{tail}"
    if what == "depart":
        return departures, f"{country} {max(number, 1)}{tail}"
    if what == "undo-arrival":
        return arrivals, "undo"
    if what == "undo-departure":
        return departures, "undo"
    return pledge, f"{country} {number * 3}{tail}"


@pytest.fixture
def runtime(database_url: str) -> Iterator[Runtime]:
    config = Settings(  # type: ignore[call-arg]
        _env_file=None, slack_bot_token="xoxb-test", database_url=database_url, admins=list(USERS)
    )
    built = build_runtime(config, token="xoxb-test", clock=FrozenClock(START))
    built.db.migrate()
    try:
        yield built
    finally:
        built.close()


def run_steps(runtime: Runtime, sequence: list[Step]) -> int:
    """Type the commands; the number of ledger rows they wrote."""
    clock = runtime.clock
    assert isinstance(clock, FrozenClock)
    written = 0
    for step in sequence:
        if step[0] == "wait":
            clock.advance(timedelta(minutes=step[2]))  # past the undo and duplicate windows sometimes
            continue
        module, text = command_for(step)
        caller = Caller(user_id=USERS[step[4]], user_name="ops", channel_id="C0OPS")
        before = count_ledger(runtime)
        run_command(runtime, module, caller, text)
        written += count_ledger(runtime) - before
        clock.advance(timedelta(seconds=30))
    return written


def count_ledger(runtime: Runtime) -> int:
    with runtime.db.session() as session:
        return sum(
            int(session.execute(select(func.count()).select_from(table)).scalar_one())
            for table in (Movement, Pledge)
        )


def reset(runtime: Runtime) -> None:
    with runtime.db.session() as session:
        for table in (DeploymentTotal, CommandLog, PendingCommand, Pledge):
            session.execute(delete(table))
        session.execute(update(Movement).values(reverses_id=None))
        session.execute(delete(Movement))


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
def test_totals_equal_the_ledger_after_any_sequence_of_commands(runtime: Runtime) -> None:
    examples = 100 if runtime.db.engine.dialect.name == "sqlite" else 20
    written: list[int] = []

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(steps, min_size=5, max_size=40))
    def check(sequence: list[Step]) -> None:
        reset(runtime)
        written.append(run_steps(runtime, sequence))
        with runtime.db.session() as session:
            assert totals.deployment_status(session) == ledger.deployment_status(session)
            assert totals.mismatches(session) == []
            # The digest's "last heard" (one seek per country of the totals) is the ledger's own.
            naive = select(col(Movement.country), func.max(col(Movement.created_at))).group_by(
                col(Movement.country)
            )
            assert digests.last_movement_at(session) == {code: at for code, at in session.execute(naive)}

    check()
    assert sum(written) > examples  # the sequences did record rows: the comparison was not vacuous


def test_a_rejected_command_changes_neither_the_ledger_nor_the_totals(runtime: Runtime) -> None:
    ops = Caller(user_id=USERS[0], channel_id="C0OPS")
    run_command(runtime, arrivals, ops, "poland 5 eod")
    reply = run_command(runtime, departures, ops, "poland 9 eod")
    assert "only 5 people on duty" in reply.text
    with runtime.db.session() as session:
        assert totals.on_duty(session, "PL", "eod") == 5
        assert totals.mismatches(session) == []


# -- the migration fills the totals from an existing ledger ----------------------------------------


def test_the_migration_fills_the_totals_from_the_ledger(database_url: str) -> None:
    db = Database.from_url(database_url)
    try:
        command.upgrade(alembic_config(db.engine), "0003")  # before the totals existed
        with db.engine.begin() as connection:
            for row in (
                ("PL", "arrival", 40, None),
                ("PL", "arrival", 12, "eod"),
                ("PL", "departure", 5, None),
                ("PL", "arrival", -12, "eod"),
                ("DE", "arrival", 7, "dog-team"),
            ):
                connection.execute(
                    Movement.__table__.insert().values(  # type: ignore[attr-defined]
                        country=row[0],
                        kind=row[1],
                        count=row[2],
                        capability=row[3],
                        recorded_by="U1",
                        channel_id="C1",
                        command_text="x",
                        created_at=START,
                    )
                )
            for country, capability, headcount in (("PL", None, 100), ("PL", None, 120), ("FR", "ct", 9)):
                connection.execute(
                    Pledge.__table__.insert().values(  # type: ignore[attr-defined]
                        country=country,
                        capability=capability,
                        headcount=headcount,
                        recorded_by="U1",
                        channel_id="C1",
                        command_text="x",
                        created_at=START,
                    )
                )
        db.migrate()
        with db.session() as session:
            status = totals.deployment_status(session)
            assert status == ledger.deployment_status(session)
            assert status["PL"].total.pledged == 120
            assert status["PL"].total.on_duty == 35
            assert status["FR"].by_capability["ct"].pledged == 9
            assert status["DE"].by_capability["dog-team"].arrived == 7
    finally:
        db.dispose()


# -- liaison doctor ----------------------------------------------------------------------------------


def doctor(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LIAISON_"))}
    env.update(DATABASE_URL=database_url, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "doctor", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_doctor_finds_totals_that_disagree_with_the_ledger_and_repairs_them(
    runtime: Runtime, database_url: str
) -> None:
    ops = Caller(user_id=USERS[0], channel_id="C0OPS")
    run_command(runtime, pledge, ops, "poland 50 eod")
    run_command(runtime, arrivals, ops, "poland 12 eod")
    run_command(runtime, arrivals, ops, "germany 3")

    healthy = doctor(database_url)
    assert healthy.returncode == 0, healthy.stderr
    assert "Running totals agree with the ledgers (2 movements and 1 pledges)." in healthy.stdout

    with runtime.db.session() as session:  # what a bug or a hand-edited database could do
        session.execute(
            update(DeploymentTotal)
            .where(DeploymentTotal.country == "PL", DeploymentTotal.arrived > 0)  # type: ignore[arg-type]
            .values(arrived=99)
        )
        session.execute(delete(DeploymentTotal).where(DeploymentTotal.country == "DE"))  # type: ignore[arg-type]

    broken = doctor(database_url)
    assert broken.returncode == 1
    assert "differ from the ledgers" in broken.stdout
    assert "PL / eod: arrived is 99 in the totals but 12 in the ledger" in broken.stdout
    assert "DE / unspecified: missing from the totals" in broken.stdout
    assert "liaison doctor --repair" in broken.stdout

    repaired = doctor(database_url, "--repair")
    assert repaired.returncode == 0, repaired.stderr
    assert "Rebuilt the totals from the ledgers (2 rows)." in repaired.stdout
    assert doctor(database_url).returncode == 0
    with runtime.db.session() as session:
        assert totals.on_duty(session, "PL", "eod") == 12
        assert totals.on_duty(session, "DE", None) == 3


def test_doctor_asks_for_the_migration_on_an_old_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database.from_url(url)
    command.upgrade(alembic_config(db.engine), "0003")
    db.dispose()

    result = doctor(url)

    assert result.returncode == 2
    assert "liaison migrate" in result.stdout
    assert "Traceback" not in result.stderr
