"""The digest as people read it: a golden copy for a realistic 46-country morning, and Slack's limits
for 200 countries. Regenerate the golden file after an intended change with UPDATE_GOLDEN=1."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.demo import load_demo_data
from bot.text_render import render_message
from commands.alert_levels import default_scale
from commands.capabilities import default_vocabulary
from commands.common import CommandConfig
from commands.countries import all_countries
from commands.digest_chart import render_chart
from commands.digest_content import DigestData, gather, render, silent_countries
from commands.incident_feed import IncidentSummary
from storage.db import Database
from storage.digests import MovementTotals, PledgeChange, Window
from storage.ledger import Bucket, CountryStatus
from storage.models import AlertNotice, Pledge

GOLDEN = Path(__file__).with_name("golden") / "digest_46_countries.json"
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 7, 21, 5, 0, tzinfo=UTC)  # Tuesday 07:00 in Paris
CONFIG = CommandConfig(zone=PARIS, vocabulary=default_vocabulary())


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    database = Database.from_url("sqlite://")
    database.migrate()
    with database.session() as session:
        load_demo_data(session, NOW - timedelta(hours=1))
        session.add(
            Pledge(
                country="PL",
                capability="dog-team",
                headcount=30,
                recorded_by="U0OPS",
                channel_id="COPS",
                command_text="pledge poland 30 dog-team",
                created_at=NOW - timedelta(hours=3),
            )
        )
    yield database
    database.dispose()


def morning(db: Database) -> DigestData:
    with db.session() as session:
        data = gather(session, CONFIG, window=Window(NOW - timedelta(hours=24), NOW), scope=None)
    notice = AlertNotice(
        id=3,
        level="urgence",
        previous_level="renforcee",
        reason="credible threat",
        set_by="U0OPS",
        created_at=NOW - timedelta(hours=14),
    )
    codes = sorted(data.statuses)
    acked = {code: ("U0" + code, NOW - timedelta(hours=13)) for code in codes[::2]}
    return dataclasses.replace(
        data, level=default_scale()["urgence"], notice=notice, notified=codes, acknowledged=acked
    )


def test_golden_digest_for_46_countries(db: Database) -> None:
    data = morning(db)
    assert len(data.statuses) == 46
    reply = render(data, PARIS)
    message = reply.to_message()
    rendered = {
        "text": message["text"],
        "blocks": message["blocks"],
        "readable": render_message(message).split("\n"),
    }
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(rendered, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert rendered == expected


def test_the_46_country_digest_says_what_matters(db: Database) -> None:
    readable = render_message(render(morning(db), PARIS).to_message())
    assert readable.startswith("Morning digest — Tuesday 21 July")
    assert "Alert level: Urgence attentat* since yesterday 17:00 (notice #3)" in readable
    assert "Not acknowledged by 23 of 46 countries" in readable
    assert "Poland pledge (dog-team)" in readable
    assert "→ *30*" in readable
    assert "Silent for more than 48 h while short of pledge" in readable
    assert "`/deployment` lists them all" in readable
    gaps = [line for line in readable.split("\n") if line[:1].isalpha() and "%" in line]
    assert gaps, readable
    values = [int(line[36:42].replace(",", "")) for line in gaps]
    assert values == sorted(values, reverse=True)  # biggest gaps first
    assert "Open incidents" not in readable  # incidents are not tracked yet: no section at all


def test_silent_countries_are_short_and_quiet_for_two_days(db: Database) -> None:
    data = morning(db)
    for _code, bucket, last in silent_countries(data):
        assert bucket.gap > 0
        assert last is None or NOW - last > timedelta(hours=48)


def test_incidents_are_listed_most_severe_first_and_escaped(db: Database) -> None:
    data = dataclasses.replace(
        morning(db),
        incidents=[
            IncidentSummary("INC-7", "Crowd surge at <!here> Pont d'Iéna", "sev2", countries=("FR",)),
            IncidentSummary("INC-9", "Dog team missing at its post", "sev1", "owned", ("PL",)),
        ],
    )
    readable = render_message(render(data, PARIS).to_message())
    assert readable.index("INC-9") < readable.index("INC-7")
    blocks = json.dumps(render(data, PARIS).blocks)
    assert "<!here>" not in blocks
    assert "&lt;!here&gt;" in blocks
    empty = dataclasses.replace(data, incidents=[])
    assert "Open incidents:* none" in render_message(render(empty, PARIS).to_message())


def two_hundred() -> DigestData:
    codes = [country.code for country in all_countries()[:200]]
    assert len(codes) == 200
    statuses = {
        code: CountryStatus(code, {None: Bucket(pledged=50 + i, arrived=i % 40, departed=i % 3)})
        for i, code in enumerate(codes)
    }
    return DigestData(
        scope=None,
        now=NOW,
        since=NOW - timedelta(hours=24),
        statuses=statuses,
        movements={
            code: MovementTotals(arrived=i % 40, departed=i % 3, entries=2) for i, code in enumerate(codes)
        },
        pledge_changes=[PledgeChange(code, "patrol", 10, 20, NOW, "U0OPS") for code in codes],
        last_heard={code: NOW - timedelta(days=3) for code in codes},
        level=default_scale()["urgence"],
        notice=AlertNotice(
            id=9, level="urgence", previous_level="vigilance", reason="r", set_by="U0OPS", created_at=NOW
        ),
        notified=codes,
        acknowledged={},
        arrivals_by_day=[(NOW.date() - timedelta(days=d), d * 10) for d in range(13, -1, -1)],
        incidents=[IncidentSummary(f"INC-{i}", "x" * 200, "sev3") for i in range(100)],
    )


def test_200_countries_stay_within_block_kit_limits() -> None:
    message = render(two_hundred(), PARIS).to_message()
    blocks = message["blocks"]
    assert len(blocks) <= 50
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
    assert len(json.dumps(blocks, ensure_ascii=False)) < 12_000  # Slack refuses ~13k in practice
    assert len(message["text"]) <= 3000
    readable = render_message(message)
    assert "Not acknowledged by 200 of 200 countries" in readable
    assert "and " in readable  # the names are summarised
    assert "more countries" in readable
    assert "`/deployment`" in readable


def test_200_country_chart_is_a_sensible_png() -> None:
    png = render_chart(two_hundred())
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert 10_000 < len(png) < 1_000_000


def test_one_countrys_digest(db: Database) -> None:
    with db.session() as session:
        data = gather(session, CONFIG, window=Window(NOW - timedelta(hours=24), NOW), scope="PL")
    readable = render_message(render(data, PARIS).to_message())
    assert readable.startswith("Poland — Morning digest")
    assert "By capability" in readable
    assert "dog-team" in readable
    assert "Germany" not in readable
    png = render_chart(data)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
