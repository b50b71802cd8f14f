"""The demo dataset: a believable board, consistent with the ledger's rules, and reproducible."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from bot.demo import COUNTRIES, DemoDataExists, DemoSummary, load_demo_data
from commands.capabilities import default_vocabulary
from commands.countries import resolve_country
from commands.parsing import parse_tail, split_country_and_count
from storage import ledger
from storage.db import Database
from storage.models import Movement, MovementKind, Pledge

NOW = datetime(2024, 7, 22, 9, 30, tzinfo=UTC)


def fresh_db(tmp_path: Path, name: str = "t.db") -> Database:
    db = Database.from_url(f"sqlite:///{tmp_path}/{name}")
    db.migrate()
    return db


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = fresh_db(tmp_path)
    with database.session() as s:
        load_demo_data(s, NOW)
    return database


def movements(session: Session) -> list[Movement]:
    return list(session.execute(select(Movement).order_by(col(Movement.id))).scalars())


def test_summary_matches_the_ledger(tmp_path: Path) -> None:
    database = fresh_db(tmp_path)
    with database.session() as s:
        summary = load_demo_data(s, NOW)
    with database.session() as s:
        statuses = ledger.deployment_status(s)
        rows = movements(s)
    total = ledger.Bucket()
    for status in statuses.values():
        total.add(status.total)
    assert summary.countries == len(statuses) == 46
    assert 2_000 < summary.pledged <= 2_300
    assert (summary.pledged, summary.arrived, summary.departed) == (
        total.pledged,
        total.arrived,
        total.departed,
    )
    assert summary.movements == len(rows)


def test_forty_six_real_countries(db: Database) -> None:
    with db.session() as s:
        codes = set(s.execute(select(col(Pledge.country)).distinct()).scalars())
    assert len(codes) == 46
    for country in COUNTRIES:
        assert resolve_country(country.typed).code == country.code


def test_pledges_are_a_few_large_and_many_small(db: Database) -> None:
    with db.session() as s:
        statuses = ledger.deployment_status(s)
    totals = sorted((status.total.pledged for status in statuses.values()), reverse=True)
    assert 2_000 < sum(totals) <= 2_300
    assert all(100 <= size <= 230 for size in totals[:4])
    assert sum(1 for size in totals if 5 <= size <= 40) >= 20
    keys = {c.key for c in default_vocabulary()}
    capabilities = {cap for status in statuses.values() for cap in status.by_capability}
    assert capabilities <= keys
    for wanted in ("dog-team", "eod"):
        with_it = [
            st for st in statuses.values() if st.by_capability.get(wanted, ledger.Bucket()).pledged > 0
        ]
        assert len(with_it) >= 5, wanted


def test_fill_rates_vary(db: Database) -> None:
    with db.session() as s:
        rates = [status.total.fill_rate or 0.0 for status in ledger.deployment_status(s).values()]
    assert sum(1 for rate in rates if rate >= 0.99) >= 5
    assert sum(1 for rate in rates if 0.25 <= rate <= 0.75) >= 5
    assert sum(1 for rate in rates if rate == 0) >= 2


def test_movements_are_in_the_last_four_days_and_never_in_the_future(db: Database) -> None:
    with db.session() as s:
        rows = movements(s)
    assert rows
    for movement in rows:
        assert movement.created_at.tzinfo is not None
        assert NOW - timedelta(days=4) <= movement.created_at <= NOW
        assert movement.count > 0
        assert movement.recorded_by.startswith("UDEMO")
        assert movement.channel_id == "CDEMO"
    assert {MovementKind(m.kind) for m in rows} == {MovementKind.ARRIVAL, MovementKind.DEPARTURE}
    assert any(m.location for m in rows)
    assert any(m.note for m in rows)


def test_departures_never_exceed_arrivals(db: Database) -> None:
    with db.session() as s:
        statuses = ledger.deployment_status(s)
        rows = movements(s)
    departed = 0
    for status in statuses.values():
        for capability, bucket in status.by_capability.items():
            assert bucket.departed <= bucket.arrived, (status.country, capability)
            departed += bucket.departed
    assert departed > 0
    # ...and not even for a moment: in recording order, no bucket ever goes below zero on duty.
    on_duty: dict[tuple[str, str | None], int] = {}
    for movement in sorted(rows, key=lambda m: (m.created_at, m.id or 0)):
        sign = 1 if movement.kind == MovementKind.ARRIVAL else -1
        key = (movement.country, movement.capability)
        on_duty[key] = on_duty.get(key, 0) + sign * movement.count
        assert on_duty[key] >= 0, movement.command_text


def test_command_text_is_what_was_recorded(db: Database) -> None:
    vocabulary = default_vocabulary()
    with db.session() as s:
        rows = movements(s)
        pledges = list(s.execute(select(Pledge)).scalars())
    for movement in rows:
        command, *tokens = movement.command_text.split()
        assert command == ("/arrivals" if movement.kind == MovementKind.ARRIVAL else "/departures")
        country, count, rest = split_country_and_count(tokens, "usage")
        tail = parse_tail(rest, vocabulary, "usage")
        assert country.code == movement.country
        assert int(count) == movement.count
        assert tail.capability is not None
        assert tail.capability.key == movement.capability
        assert (tail.location, tail.note) == (movement.location, movement.note)
    for pledge in pledges:
        command, *tokens = pledge.command_text.split()
        assert command == "/pledge"
        country, count, rest = split_country_and_count(tokens, "usage")
        assert (country.code, int(count), rest) == (pledge.country, pledge.headcount, [pledge.capability])
        assert pledge.created_at < NOW


def test_second_load_is_refused(db: Database) -> None:
    with db.session() as s, pytest.raises(DemoDataExists) as refused:
        load_demo_data(s, NOW)
    message = str(refused.value)
    assert "--force" in message
    assert "pledge" in message
    assert "movement" in message
    assert refused.value.pledges > 0
    assert refused.value.movements > 0


def test_existing_movement_alone_blocks_the_demo(tmp_path: Path) -> None:
    database = fresh_db(tmp_path)
    with database.session() as s:
        s.add(
            Movement(
                country="PL",
                kind=MovementKind.ARRIVAL,
                count=3,
                recorded_by="U1",
                channel_id="C1",
                command_text="/arrivals poland 3",
                created_at=NOW,
            )
        )
    with database.session() as s, pytest.raises(DemoDataExists, match="1 movement"):
        load_demo_data(s, NOW)


def test_force_adds_the_demo_on_top(db: Database) -> None:
    with db.session() as s:
        before = len(movements(s))
        summary = load_demo_data(s, NOW, force=True)
    with db.session() as s:
        assert len(movements(s)) == before + summary.movements
        statuses = ledger.deployment_status(s)
    assert len(statuses) == 46
    for status in statuses.values():
        for bucket in status.by_capability.values():
            assert bucket.departed <= bucket.arrived


def test_deterministic(tmp_path: Path) -> None:
    def load(name: str, seed: int = 2024) -> tuple[DemoSummary, list[tuple[datetime, str, str]]]:
        database = fresh_db(tmp_path, name)
        with database.session() as s:
            summary = load_demo_data(s, NOW, seed=seed)
        with database.session() as s:
            rows = [(m.created_at, m.command_text, m.recorded_by) for m in movements(s)]
        return summary, rows

    first, second = load("a.db"), load("b.db")
    assert first == second
    assert load("c.db", seed=7) != first


def test_naive_now_is_rejected(tmp_path: Path) -> None:
    database = fresh_db(tmp_path)
    with database.session() as s, pytest.raises(ValueError, match="timezone-aware"):
        load_demo_data(s, NOW.replace(tzinfo=None))
