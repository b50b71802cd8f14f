"""The Bolt app: de-duplication of Events API retries, and every listener, registered here in one
place (requests are verified before they reach it, in `bot/slack_edge.py`). `serve` and `shell` both build their app with `create_app`."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import Ack, App, BoltContext, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.authorize import Authorize
from slack_bolt.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from sqlalchemy.exc import IntegrityError, OperationalError

from bot import home, incidents
from bot.dispatch import (
    caller_from_command,
    handle_alert_ack,
    handle_duplicate_choice,
    replay_guard,
    run_command,
)
from bot.errors import is_database_busy
from bot.registry import COMMAND_MODULES
from bot.runtime import Runtime
from commands import alert, duplicates, incident
from storage.models import ProcessedEvent

log = logging.getLogger(__name__)
OWN_LISTENERS = frozenset({incident.COMMAND})  # commands whose listener is registered by their bot module


def create_app(runtime: Runtime, *, signing_secret: str | None, token: str) -> App:
    """Bolt's app. Requests are verified before they reach it (`bot/slack_edge.py`), so Bolt's
    own verification is off; `signing_secret` is kept for callers that sign their requests."""

    app = App(
        name="liaison",
        signing_secret=signing_secret or "",
        request_verification_enabled=False,
        # Also answered or unused before Bolt: the edge answers `ssl_check` probes; no workflow
        # functions (whose tokens Bolt would attach to every request's context).
        ssl_check_enabled=False,
        attaching_function_token_enabled=False,
        # Per-request clients get the token from `authorize`; this one only carries the base URL.
        client=WebClient(base_url=runtime.settings.slack_api_url, retry_handlers=[], timeout=15),
        authorize=KnownToken(runtime),
        process_before_response=True,
        listener_executor=ThreadPoolExecutor(
            max_workers=runtime.settings.listener_threads, thread_name_prefix="liaison-listener"
        ),
    )
    app.use(SkipRedeliveredEvents(runtime))
    register(app, runtime)
    return app


class KnownToken(Authorize):
    """A single-workspace app: the bot token is known (or renewed by rotation), so no auth.test
    round trip per request. A class rather than a function: Bolt inspects a function's parameters
    on every request to build its arguments."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def __call__(
        self,
        *,
        context: BoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=enterprise_id, team_id=team_id, bot_token=self._runtime.tokens.current()
        )


class SkipRedeliveredEvents(Middleware):
    """Slack redelivers events it thinks were missed (X-Slack-Retry-Num): act on each event_id once.

    A class rather than a function middleware: Bolt inspects a function's parameters on every
    request to build its arguments, and every request passes through here."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:
        event_id = req.body.get("event_id") if req.body.get("type") == "event_callback" else None
        if not event_id:
            return next()
        try:
            with self._runtime.db.request_session() as session:
                session.add(ProcessedEvent(event_id=str(event_id), received_at=self._runtime.clock.now()))
        except OperationalError as error:
            if not is_database_busy(error):
                raise
            log.warning("database busy: event %s not handled now (Slack retries it)", event_id)
            return BoltResponse(status=503, body="")
        except IntegrityError:
            retry = req.headers.get("x-slack-retry-num", ["?"])[0]
            log.info("event %s already handled; ignoring redelivery (retry %s)", event_id, retry)
            return BoltResponse(status=200, body="")
        return next()


def register(app: App, runtime: Runtime) -> None:
    for module in COMMAND_MODULES:
        if module.COMMAND not in OWN_LISTENERS:
            app.command(module.COMMAND)(_command_listener(runtime, module))
    incidents.register(app, runtime)  # /incident, its buttons, modal and message shortcut

    @app.action(re.compile(f"^({duplicates.ACTION_RECORD_AGAIN}|{duplicates.ACTION_DISCARD})$"))
    def duplicate_choice(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        handle_duplicate_choice(runtime, body, action)

    @app.action(alert.ACTION_ACK)
    def alert_acknowledged(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        handle_alert_ack(runtime, body, action)

    @app.event("app_home_opened")
    def app_home_opened(ack: Ack, event: dict[str, Any]) -> None:
        ack()
        if event.get("tab", "home") == "home":
            home.publish(runtime, str(event.get("user", "")))

    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> None:
        if is_database_busy(error):
            log.warning("database busy for a %s request (Slack retries events)", body.get("type", "command"))
            return
        log.error("unhandled error for a %s request", body.get("type", "command"), exc_info=error)


def _command_listener(runtime: Runtime, module: Any) -> Any:
    def listener(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
        caller, text = caller_from_command(command), str(command.get("text", ""))
        reply = run_command(runtime, module, caller, text, replay_guard(context))
        ack(**reply.to_message())

    listener.__name__ = f"command_{module.COMMAND.strip('/')}"
    return listener
