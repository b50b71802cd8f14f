"""Pytest plugin with the test harness fixtures (``pytest_plugins = ["tests.support.fixtures"]``).

- ``postgres_server_url`` (session): ``$LIAISON_TEST_POSTGRES_URL`` if set (``.ci/run`` starts one),
  else a throwaway server for the session. None available: fail when ``$CI`` is true, else skip.
- ``postgres_url``: a fresh empty database per test, dropped afterwards.
- ``migrated_postgres_url``: a fresh database at the schema's head, cloned (``CREATE DATABASE …
  TEMPLATE``) from a template migrated once per session, a clone or two ahead of need. The
  template's name is unique to the session and only the session's cloning thread uses it, so
  concurrent test sessions on one server do not collide.
- ``slack``: a running ``SlackStandIn``.
- ``signing_secret`` / ``slack_requests``: the test signing secret and a request factory for it.

Tests using a PostgreSQL fixture get the ``postgres`` marker automatically.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from storage.db import Database
from tests.support.postgres import (
    ClonePool,
    PostgresServer,
    PostgresUnavailable,
    create_database,
    database_url,
    drop_database,
)
from tests.support.signing import SlackRequestFactory
from tests.support.slack_standin import SlackStandIn

POSTGRES_URL_ENV = "LIAISON_TEST_POSTGRES_URL"
TEST_SIGNING_SECRET = "liaison-test-signing-secret-0123456789abcdef"
_POSTGRES_FIXTURES = frozenset(
    {"postgres_server_url", "postgres_url", "migrated_postgres_url", "postgres_clones"}
)
_TRUE_VALUES = frozenset({"1", "true", "yes", "on"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _POSTGRES_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


def running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in _TRUE_VALUES


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server's ``postgres`` database, for the whole session."""
    configured = os.environ.get(POSTGRES_URL_ENV)
    if configured:
        yield configured
        return
    base_dir = _traversable_temp_dir()
    server = PostgresServer()
    try:
        server.start(base_dir)
    except PostgresUnavailable as exc:
        server.stop()
        shutil.rmtree(base_dir, ignore_errors=True)
        _postgres_unavailable(str(exc))
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(base_dir, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """URL of a new, empty database, dropped after the test."""
    name = f"t_{uuid.uuid4().hex}"
    url = create_database(postgres_server_url, name)
    try:
        yield url
    finally:
        drop_database(postgres_server_url, name)


@pytest.fixture(scope="session")
def postgres_clones(postgres_server_url: str) -> Iterator[ClonePool]:
    """Clones of a database migrated to head once for the session."""
    template = f"liaison_tpl_{uuid.uuid4().hex}"
    db = Database.from_url(create_database(postgres_server_url, template))
    try:
        db.migrate()
    finally:
        db.dispose()  # CREATE DATABASE … TEMPLATE needs nobody connected to the template
    pool = ClonePool(postgres_server_url, template)
    try:
        yield pool
    finally:
        pool.close()
        drop_database(postgres_server_url, template)


@pytest.fixture
def migrated_postgres_url(postgres_server_url: str, postgres_clones: ClonePool) -> Iterator[str]:
    """URL of a new database already at the schema's head, dropped after the test."""
    name = postgres_clones.take()
    try:
        yield database_url(postgres_server_url, name)
    finally:
        drop_database(postgres_server_url, name)


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    """A running Slack Web API stand-in; point the bot's Slack base URL at ``slack.base_url``."""
    with SlackStandIn() as standin:
        yield standin


@pytest.fixture
def signing_secret() -> str:
    return TEST_SIGNING_SECRET


@pytest.fixture
def slack_requests(signing_secret: str) -> SlackRequestFactory:
    return SlackRequestFactory(signing_secret)


def _traversable_temp_dir() -> Path:
    """A temp dir the ``postgres`` user can reach when tests run as root (pytest's tmp dirs are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="liaison-pg-", dir="/tmp"))
    path.chmod(0o755)
    return path


def _postgres_unavailable(reason: str) -> NoReturn:
    if running_in_ci():
        pytest.fail(f"PostgreSQL is required in CI but unavailable: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")
