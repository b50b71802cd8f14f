"""A database held by someone else: requests fail fast inside Slack's 3 seconds with a "busy,
nothing recorded, try again" reply; /healthz says so. Nothing waits on a sleep: the lock is held
for as long as the test needs it."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from bot.errors import BUSY_MESSAGE, is_database_busy, unexpected_error_reply
from storage.models import CommandLog, Movement
from tests.support.bot import RunningBot, reply_text
from tests.support.slack_standin import SlackStandIn

SLACK_BUDGET_S = 3.0


@contextmanager
def sqlite_write_lock(url: str) -> Iterator[None]:
    """Another process's transaction holding SQLite's write lock."""
    path = make_url(url).database
    assert path
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_held_sqlite_lock_gets_a_busy_reply_in_time(bot: RunningBot, sqlite_url: str) -> None:
    with sqlite_write_lock(sqlite_url):
        started = time.monotonic()
        body = bot.reply("/arrivals", "poland 10")
        elapsed = time.monotonic() - started
        health = bot.client.http.get("/healthz")

    assert elapsed < SLACK_BUDGET_S - 0.5
    assert body["response_type"] == "ephemeral"
    assert "busy" in reply_text(body)
    assert "nothing was recorded" in reply_text(body)
    assert "Something went wrong" not in reply_text(body)
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"
    assert any("database busy" in reason for reason in health.json()["reasons"])
    assert (bot.count(Movement), bot.count(CommandLog)) == (0, 0)

    # The lock released, the retyped command goes through and health recovers.
    assert bot.reply("/arrivals", "poland 10")["response_type"] == "in_channel"
    assert bot.client.http.get("/healthz").status_code == 200
    assert bot.count(Movement) == 1


def test_a_held_sqlite_lock_refuses_a_button_press_quickly(bot: RunningBot, sqlite_url: str) -> None:
    with sqlite_write_lock(sqlite_url):
        started = time.monotonic()
        response = bot.client.post_action("duplicate_discard", "1")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert elapsed < SLACK_BUDGET_S - 0.5


@pytest.mark.postgres
def test_a_locked_postgres_table_gets_a_busy_reply_in_time(
    migrated_postgres_url: str, slack: SlackStandIn, signing_secret: str
) -> None:
    from tests.support.bot import running_bot

    with running_bot(migrated_postgres_url, slack, signing_secret) as bot:
        with psycopg.connect(migrated_postgres_url) as holder:
            holder.execute("LOCK TABLE movement IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            body = bot.reply("/arrivals", "poland 10")
            elapsed = time.monotonic() - started
            holder.rollback()
        assert elapsed < SLACK_BUDGET_S - 0.5
        assert BUSY_MESSAGE in body["text"]
        assert bot.count(Movement) == 0
        assert bot.reply("/arrivals", "poland 10")["response_type"] == "in_channel"


def test_busy_errors_are_recognised_and_others_are_not() -> None:
    locked = OperationalError("INSERT …", {}, sqlite3.OperationalError("database is locked"))
    assert is_database_busy(locked)
    assert BUSY_MESSAGE in unexpected_error_reply(locked, "/arrivals").text
    other = OperationalError("SELECT …", {}, sqlite3.OperationalError("no such table: movement"))
    assert not is_database_busy(other)
    assert "Something went wrong" in unexpected_error_reply(other, "/arrivals").text
    assert not is_database_busy(RuntimeError("database is locked"))


def test_a_broken_database_gives_an_error_id_not_a_500(bot: RunningBot, sqlite_url: str) -> None:
    path = make_url(sqlite_url).database
    assert path
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE seen_request")
    body = bot.reply("/arrivals", "poland 10")
    assert "Something went wrong on our side and nothing was recorded (error id" in body["text"]
    assert "seen_request" not in reply_text(body)
    assert bot.count(Movement) == 0
    assert bot.client.post_action("duplicate_discard", "1").status_code == 500
