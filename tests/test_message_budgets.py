"""Every message the bot builds stays within Slack's limits with 250 countries and 8 liaison officers
each (40,000 characters of text, 50 blocks, 3,000 per section; in practice ~13,000 characters of blocks):
long lists are summarised and point to the command that shows the rest."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select
from sqlmodel import Session, col

from commands import alert, deployment, liaison
from commands.capabilities import default_vocabulary
from commands.common import Caller, CommandConfig, CommandContext
from commands.countries import all_countries
from commands.notices import broadcast, send_reminders
from storage import outbox
from storage.clock import FrozenClock
from storage.db import Database
from storage.ledger import Bucket, CountryStatus
from storage.models import AlertNotice, ChannelLink, LiaisonAssignment, OutboxMessage, Role, UserRole
from tests.support.block_kit import assert_valid_message, texts_of

NOW = datetime(2026, 7, 20, 7, 0, tzinfo=UTC)
CODES = [country.code for country in all_countries()]
LIAISONS_PER_COUNTRY = 8
CONFIG = CommandConfig(
    zone=ZoneInfo("Europe/Paris"),
    vocabulary=default_vocabulary(),
    ops_channel="COPS",
    admins=frozenset({"UADMIN"}),
)
SLACK_TEXT_LIMIT = 40_000


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """250 countries, 8 liaison officers and a linked channel each, 30 ops."""
    path: Path = tmp_path_factory.mktemp("budgets") / "world.db"
    db = Database.from_url(f"sqlite:///{path}")
    db.migrate()
    with db.session() as session:
        for n, code in enumerate(CODES):
            session.add(ChannelLink(channel_id=f"C{n:010d}", country=code, linked_by="UADMIN", linked_at=NOW))
            for k in range(LIAISONS_PER_COUNTRY):
                session.add(
                    LiaisonAssignment(
                        user_id=f"U{n:06d}{k:04d}", country=code, assigned_by="UADMIN", assigned_at=NOW
                    )
                )
        for k in range(30):
            session.add(UserRole(user_id=f"UOPS{k:07d}", role=Role.OPS, granted_by="UADMIN", granted_at=NOW))
    try:
        yield db
    finally:
        db.dispose()


def context_for(session: Session, now: datetime = NOW) -> CommandContext:
    return CommandContext(
        session, Caller(user_id="UADMIN", channel_id="C0ANY"), FrozenClock(now), CONFIG, "/x"
    )


def assert_within_slack_limits(message: dict[str, object]) -> None:
    assert_valid_message(message)  # 50 blocks, 3,000 per section, 12,000 characters of blocks
    assert sum(len(t) for t in texts_of(message)) <= SLACK_TEXT_LIMIT


def test_liaison_who_with_250_countries_of_8_liaisons(world: Database) -> None:
    with world.session() as session:
        message = liaison.handle("who", context_for(session)).to_message()
    assert_within_slack_limits(message)
    shown = "\n".join(texts_of(message["blocks"]))
    assert "more countries not shown — `/liaison who &lt;country&gt;` shows one country." in shown
    assert "Ops: " in shown
    assert "and 10 more" in shown
    assert message["text"] == "Liaison officers for 250 countries, 250 linked channels."
    with world.session() as session:  # the pointer works: one country in full
        one = liaison.handle("who zimbabwe", context_for(session)).to_message()
    assert_within_slack_limits(one)
    assert all(f"<@U{CODES.index('ZW'):06d}{k:04d}>" in str(one) for k in range(LIAISONS_PER_COUNTRY))


def test_the_escalation_to_ops_of_250_silent_countries(world: Database) -> None:
    with world.session() as session:
        notice = AlertNotice(
            level="urgence", previous_level="vigilance", reason="threat", set_by="UADMIN", created_at=NOW
        )
        session.add(notice)
        session.flush()
        broadcast(session, notice, CONFIG, NOW)
        assert send_reminders(session, CONFIG, NOW + timedelta(minutes=15)) == 250
        assert send_reminders(session, CONFIG, NOW + timedelta(minutes=30)) == 1
        queued = list(session.execute(select(OutboxMessage).order_by(col(OutboxMessage.id))).scalars())
        messages = [outbox.payload_of(m) for m in queued if m.method == outbox.POST_MESSAGE]
        status = alert.status_reply(context_for(session, NOW + timedelta(minutes=31))).to_message()
        session.rollback()
    escalation = messages[-1]
    assert escalation["channel"] == "COPS"
    assert "Still silent 30 min after alert notice" in escalation["text"]
    assert "250 countries" in escalation["text"]
    assert "`/alert status` shows every country" in str(escalation["blocks"])
    for message in messages:  # 250 notices, the tracker, 250 reminders, the escalation
        assert_within_slack_limits(message)
    assert_within_slack_limits(status)


def test_deployment_overview_of_250_countries() -> None:
    statuses = {
        code: CountryStatus(code, {None: Bucket(pledged=1000 + n, arrived=n, departed=0)})
        for n, code in enumerate(CODES)
    }
    message = deployment.overview_reply(statuses).to_message()
    assert_within_slack_limits(message)
    shown = "\n".join(texts_of(message["blocks"]))
    assert (
        "more countries with smaller gaps not shown — `/deployment &lt;country&gt;` shows one country."
        in shown
    )
    assert "By capability, all countries" in shown
    assert "250 countries" in message["text"]


def test_status_and_the_reminder_pass_read_deliveries_with_one_join(world: Database) -> None:
    """Not one outbox read per delivery (≈ 230 statements a minute with 46 countries)."""
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    with world.session() as session:
        notice = AlertNotice(
            level="urgence", previous_level="vigilance", reason="threat", set_by="UADMIN", created_at=NOW
        )
        session.add(notice)
        session.flush()
        broadcast(session, notice, CONFIG, NOW)
        assert send_reminders(session, CONFIG, NOW + timedelta(minutes=15)) == 250
        event.listen(world.engine, "before_cursor_execute", seen)
        try:
            alert.status_reply(context_for(session, NOW + timedelta(minutes=16)))
            status_statements = len(statements)
            statements.clear()
            # The next minute's pass: every silent country looked at, none due for anything yet.
            assert send_reminders(session, CONFIG, NOW + timedelta(minutes=16)) == 0
            reminder_statements = len(statements)
        finally:
            event.remove(world.engine, "before_cursor_execute", seen)
        session.rollback()
    assert status_statements <= 8, status_statements
    assert reminder_statements <= 4, reminder_statements
