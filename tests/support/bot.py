"""Liaison running in-process behind its real WSGI app, talking to the Slack stand-in.

Requests go through ``httpx.WSGITransport`` into the same WSGI app ``liaison serve`` runs behind
uvicorn (signature checks, payload checks, replays, Bolt); ``http=True`` serves it on a real socket
for the few tests that need one.

The clock is frozen (tests move it); the outbox is delivered when a test says so (`deliver`), so
nothing depends on sleeps or timing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from slack_bolt import App
from sqlalchemy import func, select
from sqlmodel import SQLModel

from bot.app import create_app
from bot.http import HttpServer, LiaisonWSGI, build_wsgi
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from storage.clock import FrozenClock
from tests.support.signing import SignedClient
from tests.support.slack_standin import SlackStandIn

BOT_TOKEN = "xoxb-test-token"
# A Monday morning during the Games, 09:00 in Paris.
START = datetime(2026, 7, 20, 7, 0, tzinfo=UTC)


@dataclass
class RunningBot:
    url: str
    runtime: Runtime
    app: App
    clock: FrozenClock
    slack: SlackStandIn
    client: SignedClient
    wsgi: LiaisonWSGI
    server: HttpServer | None = None

    def command(self, command: str, text: str, **kwargs: Any) -> httpx.Response:
        return self.client.post_command(command, text, response_url=self.slack.response_url("cmd"), **kwargs)

    def reply(self, command: str, text: str, **kwargs: Any) -> dict[str, Any]:
        """The acknowledgement body of a slash command (what the user sees at once)."""
        response = self.command(command, text, **kwargs)
        assert response.status_code == 200, response.text
        body = response.json() if response.content else {}
        assert isinstance(body, dict)
        return body

    def deliver(self) -> int:
        """Deliver every outbox message that is due now."""
        return self.runtime.outbox.drain()

    def advance(self, **delta: float) -> datetime:
        return self.clock.advance(timedelta(**delta))

    def count(self, table: type[SQLModel]) -> int:
        with self.runtime.db.session() as session:
            return int(session.execute(select(func.count()).select_from(table)).scalar_one())

    def rows(self, table: type[SQLModel]) -> list[Any]:
        with self.runtime.db.session() as session:
            return list(session.execute(select(table)).scalars().all())


def reply_text(body: dict[str, Any]) -> str:
    """Everything a user reads in a message: fallback text and every block's text."""
    return body.get("text", "") + "\n" + json.dumps(body.get("blocks", []), ensure_ascii=False)


IN_PROCESS_URL = "http://liaison.test"


@contextmanager
def running_bot(
    database_url: str,
    slack: SlackStandIn,
    signing_secret: str,
    *,
    http: bool = False,
    **settings_overrides: Any,
) -> Iterator[RunningBot]:
    values: dict[str, Any] = {
        "slack_signing_secret": signing_secret,
        "slack_bot_token": BOT_TOKEN,
        "slack_api_url": slack.base_url,
        "database_url": database_url,
        "outbox_channel_interval_seconds": 0,
        "admins": ["UADMIN"],
    }
    values.update(settings_overrides)
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    clock = FrozenClock(START)
    runtime = build_runtime(settings, token=BOT_TOKEN, clock=clock)
    runtime.db.migrate()
    app = create_app(runtime, signing_secret=signing_secret, token=BOT_TOKEN)
    wsgi = build_wsgi(app, runtime, signing_secret=signing_secret, ready=lambda: True)
    server: HttpServer | None = None
    # Requests are signed on the bot's clock: moving it keeps them inside Slack's five-minute window.
    client = SignedClient(IN_PROCESS_URL, signing_secret, clock=lambda: clock.now().timestamp())
    if http:
        server = HttpServer(wsgi, "127.0.0.1", 0, threads=4)
        server.start_in_thread()
        url = f"http://127.0.0.1:{server.port}"
        client.http.close()
        client.http = httpx.Client(base_url=url, timeout=10)
    else:
        url = IN_PROCESS_URL
        client.http.close()
        client.http = httpx.Client(transport=httpx.WSGITransport(app=wsgi), base_url=url)
    try:
        yield RunningBot(url, runtime, app, clock, slack, client, wsgi, server)
    finally:
        client.close()
        if server is not None:
            server.close()
        runtime.close()


def transactions_beyond_the_replay_guard(statements: list[str]) -> list[list[str]]:
    """The transactions among `statements` (SQL as executed), leaving out the edge's own short one that
    records the request's signature (a replay must be refused even when the handler fails)."""
    groups: list[list[str]] = []
    for statement in statements:
        if statement.split()[0].upper() == "BEGIN":
            groups.append([])
        if groups:
            groups[-1].append(statement)
    return [group for group in groups if not any("seen_request" in statement for statement in group)]
