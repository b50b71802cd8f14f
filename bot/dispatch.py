"""From a Slack payload to a command handler and back: one transaction per command, errors turned
into replies, the outbox woken when the transaction committed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from types import ModuleType
from typing import Any

from sqlmodel import Session

from bot import home
from bot.errors import replay_reply, reply_failed_after_commit, unexpected_error_reply
from bot.registry import COMMANDS
from bot.runtime import Runtime
from bot.slack_reads import AskedBefore, SlackChannels
from commands import alert, duplicates
from commands.blocks import escape, section
from commands.common import (
    AnyReply,
    Caller,
    ChannelMembership,
    CommandContext,
    LateReply,
    ReadReply,
    Reply,
    UsageError,
    clean_text,
    resolve,
)
from commands.slack_text import decode
from storage import changes, outbox, replays
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
    runtime: Runtime, module: ModuleType, caller: Caller, slack_text: str, guard: replays.Guard | None = None
) -> Reply:
    """A slash command as Slack sent it: its text is decoded from Slack's encoding here, once."""
    command = str(module.COMMAND)
    text = decode(slack_text)

    def handle(ctx: CommandContext) -> AnyReply:
        reply: AnyReply = module.handle(clean_text(text, command), ctx)
        return reply

    optimistic = bool(getattr(module, "OPTIMISTIC", False))
    channels = None
    to_check = getattr(module, "channels_to_check", None)
    if to_check is not None:  # Slack is asked now, before the transaction holds anything
        channels = _ask_slack_first(runtime, caller, to_check, text, command)
    return run_in_context(
        runtime, caller, command, handle, guard=guard, optimistic=optimistic, channels=channels
    )


def _ask_slack_first(
    runtime: Runtime,
    caller: Caller,
    to_check: Callable[[str, Caller], list[str]],
    text: str,
    command: str,
) -> AskedBefore | None:
    try:
        channel_ids = to_check(clean_text(text, command), caller)
    except UsageError:
        return None  # the command refuses this text itself, in its transaction
    reading = SlackChannels.reading_with(runtime.client, runtime.tokens.current)
    return AskedBefore.asking(reading, channel_ids)


def replay_guard(context: dict[str, Any]) -> replays.Guard | None:
    """The guard the edge (bot/slack_edge.py) put in Bolt's context for a slash command."""
    guard = context.get(replays.GUARD_CONTEXT_KEY)
    return guard if isinstance(guard, replays.Guard) else None


# Enqueues the answers to a button press: (context, reply, whether the handler's work stands).
Respond = Callable[[CommandContext, Reply, bool], None]


def run_in_context(
    runtime: Runtime,
    caller: Caller,
    command: str,
    handle: Callable[[CommandContext], AnyReply],
    *,
    confirmed_duplicate: bool = False,
    respond: Respond | None = None,
    guard: replays.Guard | None = None,
    optimistic: bool = False,
    channels: ChannelMembership | None = None,
) -> Reply:
    """One transaction: committed with its outbox messages, or rolled back whole on any error.

    With `respond` (a button press: the answer goes out through the outbox), the answer is enqueued in
    the same transaction; a refusal rolls back only what the handler did, then its answer is enqueued.
    With `guard`, the request's signature is remembered in the same transaction, and a replay is
    answered without acting. `optimistic`: the command's checks may run on the server, with its
    writes (storage.gates; `Database.run_request` may then run `handle` twice). A `LateReply` is
    rendered once the transaction has committed (its content came back with the COMMIT), a
    `ReadReply` after it on a read-only snapshot; either at once where the answer is needed inside it.
    """

    def transaction(session: Session) -> tuple[AnyReply, bool]:
        if guard is not None:
            guard.remember_in(session)  # a replay raises Replayed when checked, before any commit
        ctx = CommandContext(
            session=session,
            caller=caller,
            clock=runtime.clock,
            config=runtime.config,
            command=command,
            confirmed_duplicate=confirmed_duplicate,
            channels=channels,
        )
        reply: AnyReply
        if respond is None:
            reply = handle(ctx)
        else:
            try:
                with session.begin_nested():
                    answer = resolve(handle(ctx), session)
                done = True
            except UsageError as error:
                answer, done = error.reply(), False
            respond(ctx, answer, done)
            reply = answer
        session.flush()
        if changes.board_changed(session):
            _mark_home_boards_stale(runtime, session)
        return reply, outbox.enqueued_in(session)

    try:
        reply, enqueued = runtime.db.run_request(transaction, optimistic=optimistic)
    except UsageError as error:
        if guard is not None and _replayed_refusal(runtime, guard):
            log.warning("refused a replayed %s command (signature already used)", command)
            return replay_reply()
        return error.reply()
    except replays.Replayed:
        log.warning("refused a replayed %s command (signature already used)", command)
        return replay_reply()
    except Exception as error:
        if guard is not None:
            guard.failed()
        reply = unexpected_error_reply(error, command)
        if respond is not None:
            _respond_after_failure(runtime, caller, command, respond, reply)
        return reply
    if enqueued:  # most commands only answer in the ack: no claim query for nothing
        runtime.outbox.wake()
    if isinstance(reply, ReadReply):
        return _read(runtime, reply, command)
    try:
        return reply.render() if isinstance(reply, LateReply) else reply
    except Exception as error:
        return reply_failed_after_commit(error, command)


def _read(runtime: Runtime, reply: ReadReply, command: str) -> Reply:
    """A reply that only reads, rendered on a snapshot of its own once the command's transaction
    (which recorded nothing of its own) has committed."""
    try:
        with runtime.db.read_session() as session:
            return reply.render(session)
    except UsageError as error:
        return error.reply()
    except Exception as error:
        return unexpected_error_reply(error, command)


def _replayed_refusal(runtime: Runtime, guard: replays.Guard) -> bool:
    """A refused command's transaction rolled back with its signature's note (which may not even
    have reached the server): remember the signature on its own. True when it was a replay."""
    try:
        with runtime.db.request_session(durable=False) as session:
            guard.remember_in(session)
    except replays.Replayed:
        return True
    except Exception as error:  # the refusal is answered anyway; a busy database only costs the note
        guard.failed()
        log.warning("could not remember a refused command's signature: %s", type(error).__name__)
    return False


def _mark_home_boards_stale(runtime: Runtime, session: Session) -> None:
    """One insert, committed with the change: the boards themselves are built off the command's path
    (bot.scheduler's Home refresh job)."""
    home.mark_stale(session, runtime.clock.now())


def _respond_after_failure(
    runtime: Runtime, caller: Caller, command: str, respond: Respond, reply: Reply
) -> None:
    """The press failed and nothing was stored; still tell the person (a transaction of its own)."""
    try:
        with runtime.db.request_session() as session:
            ctx = CommandContext(session, caller, runtime.clock, runtime.config, command)
            respond(ctx, reply, False)
    except Exception as error:  # the database itself is failing: the log has it
        log.error("could not answer a failed %s interaction", command, exc_info=error)
        return
    runtime.outbox.wake()


def _caller_of_interaction(body: dict[str, Any]) -> Caller:
    user = body.get("user") or {}
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id", "")
    return Caller(
        user_id=str(user.get("id", "")),
        user_name=str(user.get("username", "")),
        channel_id=str(channel),
        team_id=str(user.get("team_id", "") or (body.get("team") or {}).get("id", "")),
        response_url=str(body.get("response_url", "")),
    )


def _number_value(action: dict[str, Any]) -> int | None:
    value = str(action.get("value", ""))
    if not value.isascii() or not value.isdigit() or len(value) > 12:
        return None
    return int(value)


def handle_alert_ack(runtime: Runtime, body: dict[str, Any], action: dict[str, Any]) -> None:
    """The Acknowledge button of a notice: recorded, and the notice edited in place through the outbox,
    in one transaction; a refusal or "already acknowledged" is answered to the presser only."""
    caller = _caller_of_interaction(body)
    notice_id = _number_value(action)
    if notice_id is None:
        log.warning("acknowledgement with a malformed value %r", action.get("value"))
        return

    def respond(ctx: CommandContext, reply: Reply, done: bool) -> None:
        if reply.in_channel or not caller.response_url:
            return  # recorded: the edited notice says so
        payload = {**reply.to_message(), "replace_original": False}
        lane = f"response:ack:{caller.user_id}"
        outbox.respond(ctx.session, caller.response_url, payload, lane=lane, now=ctx.now())

    run_in_context(
        runtime, caller, alert.COMMAND, lambda ctx: alert.acknowledge(ctx, notice_id), respond=respond
    )


def handle_duplicate_choice(runtime: Runtime, body: dict[str, Any], action: dict[str, Any]) -> None:
    """ "Record again" or "Discard" on a duplicate prompt: the choice, the command it re-runs and the
    answers (via response_url) in one transaction."""
    caller = _caller_of_interaction(body)
    record_again = action.get("action_id") == duplicates.ACTION_RECORD_AGAIN
    pending_id = _number_value(action)
    if pending_id is None:
        log.warning("duplicate choice with a malformed value %r", action.get("value"))
        return
    answers: list[dict[str, Any]] = []

    def choose(ctx: CommandContext) -> Reply:
        return _resolve_pending(ctx, pending_id, record_again, answers)

    def respond(ctx: CommandContext, reply: Reply, done: bool) -> None:
        if not caller.response_url:
            return
        if not done:  # refused or failed: the prompt stays as it was, the reason is shown beside it
            answers[:] = [{**reply.to_message(), "replace_original": False}]
        for payload in answers:
            lane = f"response:{pending_id}"
            outbox.respond(ctx.session, caller.response_url, payload, lane=lane, now=ctx.now())

    run_in_context(runtime, caller, "duplicate prompt", choose, respond=respond)


def _resolve_pending(
    ctx: CommandContext, pending_id: int, record_again: bool, answers: list[dict[str, Any]]
) -> Reply:
    pending = ctx.session.get(PendingCommand, pending_id)
    if pending is None:
        raise UsageError(
            "This choice has expired: nothing was recorded again.",
            hint="Type the command again if it is still needed.",
        )
    if pending.user_id != ctx.caller.user_id:
        raise UsageError("Only the person who typed the command can choose.")
    if pending.resolved_at is not None:
        return _answer(answers, f"Already {pending.resolution}.", replace=True)
    expired = ctx.now() - pending.created_at > ctx.config.duplicate_window
    pending.resolved_at = ctx.now()
    pending.resolution = "expired" if expired else "recorded again" if record_again else "discarded"
    ctx.session.add(pending)
    typed = f"`{pending.command} {escape(pending.text)}`"
    if expired:
        minutes = max(1, int(ctx.config.duplicate_window.total_seconds() // 60))
        return _answer(
            answers,
            f":hourglass: This choice expired ({minutes} min after the prompt): {typed} was not recorded "
            "again. Type the command again if it is still needed.",
            replace=True,
        )
    if not record_again:
        return _answer(answers, f":wastebasket: Discarded — {typed} was not recorded again.", replace=True)
    module = COMMANDS.get(pending.command)
    if module is None:
        raise UsageError("That command no longer exists.")
    original_caller = Caller(
        user_id=pending.user_id,
        user_name=pending.user_name,
        channel_id=pending.channel_id,
        team_id=pending.team_id,
    )
    replay = replace(ctx, caller=original_caller, command=pending.command, confirmed_duplicate=True)
    reply = resolve(module.handle(clean_text(pending.text, pending.command), replay), ctx.session)
    if reply.in_channel:
        answers += [{"delete_original": True}, reply.to_message()]
    else:
        answers.append({**reply.to_message(), "replace_original": True})
    return reply


def _answer(answers: list[dict[str, Any]], text: str, *, replace: bool) -> Reply:
    answers.append(_ephemeral(text, replace=replace))
    return Reply(text=text)


def _ephemeral(text: str, *, replace: bool) -> dict[str, Any]:
    return {
        "response_type": "ephemeral",
        "replace_original": replace,
        "text": text,
        "blocks": [section(text)],
    }
