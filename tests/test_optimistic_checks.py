"""On PostgreSQL a recording's checks run on the server, in the round trip that records and commits
(storage.gates): a command that passes them costs one round trip; one that fails any of them is
stopped there, nothing of it stands, and it runs again step by step to refuse, ask or explain
exactly as before."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, text
from sqlmodel import Session

from storage import gates
from storage.db import Database
from storage.models import CommandLog, Movement, PendingCommand, SeenRequest
from tests.support.bot import RunningBot, reply_text, running_bot
from tests.support.slack_standin import SlackStandIn
from tests.test_statement_queue import count_round_trips

ADMIN = "UADMIN"  # an admin from LIAISON_ADMINS (tests.support.bot)
LIAISON = "U0PL1"
BOB = "U0BOB"


@pytest.fixture
def pg_bot(migrated_postgres_url: str, slack: SlackStandIn, signing_secret: str) -> Iterator[RunningBot]:
    with running_bot(migrated_postgres_url, slack, signing_secret) as running:
        yield running


@pytest.fixture
def reconsidered(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each time the server stopped an optimistic transaction (the SQLSTATE it gave)."""
    seen: list[str] = []
    real = gates.reconsidered

    def spy(error: BaseException) -> bool:
        answer = real(error)
        if answer:
            seen.append(str(getattr(getattr(error, "orig", None), "sqlstate", "")))
        return answer

    monkeypatch.setattr(gates, "reconsidered", spy)
    return seen


def stored(bot: RunningBot) -> tuple[int, int, int]:
    return bot.count(Movement), bot.count(CommandLog), bot.count(PendingCommand)


def test_a_permitted_recording_is_one_round_trip_and_a_refused_one_is_explained(
    pg_bot: RunningBot, monkeypatch: pytest.MonkeyPatch, reconsidered: list[str]
) -> None:
    pg_bot.reply("/liaison", f"assign <@{LIAISON}|anna> poland", user_id=ADMIN)
    pg_bot.reply("/arrivals", "poland 1", user_id=LIAISON)  # warm: connections open, statements prepared
    calls = count_round_trips(monkeypatch)
    body = pg_bot.reply("/arrivals", "poland 2", user_id=LIAISON)
    assert "Poland now: 3 on duty" in reply_text(body)
    assert (calls[0], reconsidered) == (1, [])

    before = stored(pg_bot)
    refused = reply_text(pg_bot.reply("/arrivals", "poland 5", user_id=BOB))
    assert "Only Poland's liaison officers, ops or an admin can record Poland's movements." in refused
    assert "Poland's liaisons: <@U0PL1>" in refused
    assert stored(pg_bot) == before  # neither the entry nor its log: the server stopped it whole
    assert reconsidered == ["LI001"]

    pg_bot.reply("/arrivals", "poland 4", user_id=ADMIN)  # an admin from the configuration (warm)
    calls[0] = 0
    body = pg_bot.reply("/arrivals", "poland 5", user_id=ADMIN)
    assert "Poland now: 12 on duty" in reply_text(body)
    assert calls[0] == 1


def test_a_departure_beyond_those_on_duty_is_stopped_by_the_server_and_explained(
    pg_bot: RunningBot, monkeypatch: pytest.MonkeyPatch, reconsidered: list[str]
) -> None:
    pg_bot.reply("/arrivals", "poland 3 dog-team")
    pg_bot.reply("/departures", "poland 1 dog-team", user_id="U0WARM")
    calls = count_round_trips(monkeypatch)
    body = pg_bot.reply("/departures", "poland 1 dog-team", user_id="U0SECOND")
    assert "Poland now: 1 on duty" in reply_text(body)
    assert calls[0] == 1
    before = stored(pg_bot)
    refused = reply_text(pg_bot.reply("/departures", "poland 2 dog-team", user_id="U0THIRD"))
    assert "Poland (dog-team) has only 1 person on duty; 2 can't leave." in refused
    assert stored(pg_bot) == before
    assert reconsidered == ["LI001"]


def test_a_retyped_entry_is_stopped_by_the_server_and_asked_about(
    pg_bot: RunningBot, reconsidered: list[str]
) -> None:
    pg_bot.reply("/arrivals", "poland 40")
    prompt = reply_text(pg_bot.reply("/arrivals", "PL 40"))
    assert "records the same as your entry at" in prompt
    assert stored(pg_bot) == (1, 1, 1)  # one entry, its log, and the question asked
    assert reconsidered == ["LI001"]


def test_only_recording_commands_leave_their_checks_to_the_server() -> None:
    """Their code lets every database error through (a replay's broken key must reach
    Database.run_request, not be taken for an answer of the command's own)."""
    from bot.registry import COMMAND_MODULES

    assert {module.COMMAND for module in COMMAND_MODULES if getattr(module, "OPTIMISTIC", False)} == {
        "/arrivals",
        "/departures",
    }


def test_a_replayed_command_is_stopped_by_the_key_of_its_note_and_answered_as_a_replay(
    pg_bot: RunningBot, reconsidered: list[str]
) -> None:
    factory = pg_bot.client.factory
    body = factory.slash_command("/arrivals", "poland 10")
    headers = factory.headers(body)
    assert pg_bot.client.post_raw(body, headers).json()["response_type"] == "in_channel"
    replayed = pg_bot.client.post_raw(body, headers).json()
    assert "already received" in replayed["text"]
    assert (pg_bot.count(Movement), pg_bot.count(SeenRequest)) == (1, 1)
    assert reconsidered == ["23505"]


def test_only_the_first_attempt_of_an_optimistic_request_is_optimistic(migrated_postgres_url: str) -> None:
    """Any other transaction checks step by step: the careful run, a request of a command that is
    not `OPTIMISTIC`, background work, and a request session outside `run_request` (the edge's own
    notes of signatures)."""
    db = Database.from_url(migrated_postgres_url)
    seen: list[bool] = []

    def work(session: Session) -> None:
        seen.append(gates.optimistic(session))
        if len(seen) == 1:
            gates.refuse_if_any(session, [("1 = 1", ())])

    try:
        db.run_request(work, optimistic=True)
        db.run_request(lambda session: seen.append(gates.optimistic(session)))
        with db.request_session() as session:
            seen.append(gates.optimistic(session))
            assert session.execute(text("SELECT 1")).scalar_one() == 1
        with db.session() as session:
            seen.append(gates.optimistic(session))
            assert session.execute(select(func.count()).select_from(Movement)).scalar_one() == 0
    finally:
        db.dispose()
    assert seen == [True, False, False, False, False]
