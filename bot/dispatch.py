"""From a Slack payload to a command handler and back: one transaction per command, errors turned
into replies, the outbox woken when the transaction committed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

from bot.errors import unexpected_error_reply
from bot.registry import COMMANDS
from bot.runtime import Runtime
from commands import alert, duplicates
from commands.blocks import section
from commands.common import Caller, CommandContext, Reply, UsageError, clean_text
from storage import outbox
from storage.models import PendingCommand

log = logging.getLogger(__name__)


def caller_from_command(body: dict[str, Any]) -> Caller:
    return Caller(
        user_id=str(body.get("user_id", "")),
        user_name=str(body.get("user_name", "")),
        channel_id=str(body.get("channel_id", "")),
        channel_name=str(body.get("channel_name", "")),
        team_id=str(body.get("team_id", "")),
        response_url=str(body.get("response_url", "")),
    )


def run_command(
    runtime: Runtime, module: ModuleType, caller: Caller, raw_text: str, *, confirmed_duplicate: bool = False
) -> Reply:
    command = str(module.COMMAND)

    def handle(ctx: CommandContext) -> Reply:
        reply: Reply = module.handle(clean_text(raw_text, command), ctx)
        return reply

    return run_in_context(runtime, caller, command, handle, confirmed_duplicate=confirmed_duplicate)


def run_in_context(
    runtime: Runtime,
    caller: Caller,
    command: str,
    handle: Callable[[CommandContext], Reply],
    *,
    confirmed_duplicate: bool = False,
) -> Reply:
    """One transaction: committed with its outbox messages, or rolled back whole on any error."""
    try:
        with runtime.db.session() as session:
            ctx = CommandContext(
                session=session,
                caller=caller,
                clock=runtime.clock,
                config=runtime.config,
                command=command,
                confirmed_duplicate=confirmed_duplicate,
            )
            reply = handle(ctx)
    except UsageError as error:
        return error.reply()
    except Exception as error:
        return unexpected_error_reply(error, command)
    if outbox.enqueued_in(session):  # most commands only answer in the ack: no claim query for nothing
        runtime.outbox.wake()
    return reply


def handle_alert_ack(runtime: Runtime, body: dict[str, Any], action: dict[str, Any]) -> None:
    """The Acknowledge button of a notice: record it; the notice is edited in place through the outbox."""
    user = body.get("user") or {}
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id", "")
    caller = Caller(
        user_id=str(user.get("id", "")), user_name=str(user.get("username", "")), channel_id=str(channel)
    )
    try:
        notice_id = int(str(action.get("value", "")))
    except ValueError:
        log.warning("acknowledgement with a malformed value %r", action.get("value"))
        return
    reply = run_in_context(runtime, caller, alert.COMMAND, lambda ctx: alert.acknowledge(ctx, notice_id))
    response_url = str(body.get("response_url", ""))
    if reply.in_channel or not response_url:
        return  # recorded: the edited notice says so
    with runtime.db.session() as session:
        payload = {**reply.to_message(), "replace_original": False}
        outbox.respond(
            session, response_url, payload, lane=f"response:ack:{caller.user_id}", now=runtime.clock.now()
        )
    runtime.outbox.wake()


def handle_duplicate_choice(runtime: Runtime, body: dict[str, Any], action: dict[str, Any]) -> None:
    """The caller pressed "Record again" or "Discard" on a duplicate prompt; answer via response_url."""
    user_id = str(body.get("user", {}).get("id", ""))
    response_url = str(body.get("response_url", ""))
    record_again = action.get("action_id") == duplicates.ACTION_RECORD_AGAIN
    try:
        pending_id = int(str(action.get("value", "")))
    except ValueError:
        log.warning("duplicate choice with a malformed value %r", action.get("value"))
        return
    replies = _resolve_pending(runtime, pending_id, user_id, record_again)
    if not replies or not response_url:
        return
    with runtime.db.session() as session:
        for payload in replies:
            outbox.respond(
                session, response_url, payload, lane=f"response:{pending_id}", now=runtime.clock.now()
            )
    runtime.outbox.wake()


def _resolve_pending(
    runtime: Runtime, pending_id: int, user_id: str, record_again: bool
) -> list[dict[str, Any]]:
    now = runtime.clock.now()
    with runtime.db.session() as session:
        pending = session.get(PendingCommand, pending_id)
        if pending is None:
            return []
        if pending.user_id != user_id:
            return [_ephemeral("Only the person who typed the command can choose.", replace=False)]
        if pending.resolved_at is not None:
            return [_ephemeral(f"Already {pending.resolution}.", replace=True)]
        pending.resolved_at = now
        pending.resolution = "recorded again" if record_again else "discarded"
        session.add(pending)
        command, text = pending.command, pending.text
        caller = Caller(
            user_id=pending.user_id,
            user_name=pending.user_name,
            channel_id=pending.channel_id,
            team_id=pending.team_id,
        )
    if not record_again:
        return [_ephemeral(f":wastebasket: Discarded — `{command}` was not recorded again.", replace=True)]
    module = COMMANDS.get(command)
    if module is None:
        return [_ephemeral("That command no longer exists.", replace=True)]
    reply = run_command(runtime, module, caller, text, confirmed_duplicate=True)
    message = reply.to_message()
    if reply.in_channel:
        return [{"delete_original": True}, message]
    return [{**message, "replace_original": True}]


def _ephemeral(text: str, *, replace: bool) -> dict[str, Any]:
    return {
        "response_type": "ephemeral",
        "replace_original": replace,
        "text": text,
        "blocks": [section(text)],
    }
