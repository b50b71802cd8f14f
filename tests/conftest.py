from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.bot import RunningBot, running_bot
from tests.support.slack_standin import SlackStandIn

pytest_plugins = ["tests.support.fixtures"]

# Settings come from the environment: a developer's own Slack variables must not leak into tests,
# and Bolt switches to OAuth mode when it sees SLACK_CLIENT_ID/SECRET.
for _name in list(os.environ):
    if (
        _name.startswith(("SLACK_", "LIAISON_")) and _name != "LIAISON_TEST_POSTGRES_URL"
    ) or _name == "DATABASE_URL":
        del os.environ[_name]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'liaison.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on the embedded default and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'liaison.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def migrated_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Like ``database_url``, already migrated to head (PostgreSQL: cloned from a template)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'liaison.db'}"  # migrating a new SQLite file takes ~20 ms
    url: str = request.getfixturevalue("migrated_postgres_url")
    return url


@pytest.fixture
def bot(sqlite_url: str, slack: SlackStandIn, signing_secret: str) -> Iterator[RunningBot]:
    with running_bot(sqlite_url, slack, signing_secret) as running:
        yield running


@pytest.fixture
def any_bot(migrated_database_url: str, slack: SlackStandIn, signing_secret: str) -> Iterator[RunningBot]:
    """The bot on SQLite and on PostgreSQL."""
    with running_bot(migrated_database_url, slack, signing_secret) as running:
        yield running
