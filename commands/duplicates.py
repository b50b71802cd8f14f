"""A recording command retyped within minutes (people retype when Slack shows a timeout) is not
recorded twice: the caller is asked whether to record it again or discard it.

Commands are compared by meaning — what would be recorded (kind, country, count, capability, place) —
against every recording of the caller within the window, not as typed: `poland 40` and `PL 40` are the
same entry, even with another command typed in between.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import col

from commands.blocks import actions, button, context, escape, section
from commands.common import CommandContext, Reply, format_local_time
from commands.parsing import quote
from storage.gates import Condition
from storage.lean import Statements, stored_time
from storage.models import CommandLog, PendingCommand

ACTION_RECORD_AGAIN = "duplicate_record_again"
ACTION_DISCARD = "duplicate_discard"
# Plain statements (storage.lean): every recording command runs both.
_PREVIOUS = (
    "SELECT created_at FROM command_log WHERE user_id = ? AND created_at >= ? AND command = ? "
    "AND normalized_text = ? ORDER BY id DESC LIMIT 1"
)
_REMEMBER = (
    "INSERT INTO command_log (user_id, channel_id, command, normalized_text, created_at) "
    "VALUES (?, ?, ?, ?, ?)"
)


@dataclass(frozen=True)
class Previous:
    """The earlier recording a retyped command matches."""

    created_at: datetime


def meaning(*parts: object) -> str:
    """The key two commands share when they would record the same thing (case and spaces ignored)."""
    return "|".join("" if part is None else " ".join(str(part).casefold().split()) for part in parts)


def check(ctx: CommandContext, key: str, text: str) -> Reply | None:
    """A confirmation prompt when the caller recorded the same `key` within the window, else None."""
    return prompt_if_retyped(ctx, previous_soon(ctx, key)(), text)


def previous_soon(ctx: CommandContext, key: str) -> Callable[[], Previous | None]:
    """The caller's earlier recording of `key` within the window, read with the statements queued
    after it (storage.lean): call the result for the answer."""
    window = ctx.config.duplicate_window
    if ctx.confirmed_duplicate or window.total_seconds() <= 0:
        return lambda: None
    sql = Statements(ctx.session)
    rows = sql.read_later(_PREVIOUS, (ctx.caller.user_id, sql.when(ctx.now() - window), ctx.command, key))

    def answer() -> Previous | None:
        found = rows()
        return Previous(created_at=stored_time(found[0][0])) if found else None

    return answer


def retyped(ctx: CommandContext, key: str) -> Condition | None:
    """`previous_soon` as a condition for the server to check (storage.gates): true when the caller
    recorded `key` within the window; None when no earlier entry counts."""
    window = ctx.config.duplicate_window
    if ctx.confirmed_duplicate or window.total_seconds() <= 0:
        return None
    sql = Statements(ctx.session)
    params = (ctx.caller.user_id, sql.when(ctx.now() - window), ctx.command, key)
    return f"EXISTS ({_PREVIOUS})", params


def prompt_if_retyped(ctx: CommandContext, previous: Previous | None, text: str) -> Reply | None:
    """The confirmation prompt for a command that matches `previous`, else None."""
    if previous is None:
        return None
    pending = PendingCommand(
        user_id=ctx.caller.user_id,
        user_name=ctx.caller.user_name,
        channel_id=ctx.caller.channel_id,
        team_id=ctx.caller.team_id,
        command=ctx.command,
        text=text,
        created_at=ctx.now(),
    )
    ctx.session.add(pending)
    ctx.session.flush()
    return confirmation_reply(ctx, pending, previous)


def remember(ctx: CommandContext, key: str) -> None:
    """Log a recording that was carried out, for the next duplicate check."""
    sql = Statements(ctx.session)
    caller = ctx.caller
    sql.later(_REMEMBER, (caller.user_id, caller.channel_id, ctx.command, key, sql.when(ctx.now())))


def forget(ctx: CommandContext, key: str) -> None:
    """An entry was undone: retyping it is a new entry, not a duplicate."""
    ctx.session.execute(
        delete(CommandLog).where(
            col(CommandLog.user_id) == ctx.caller.user_id,
            col(CommandLog.command) == ctx.command,
            col(CommandLog.normalized_text) == key,
        )
    )


def confirmation_reply(
    ctx: CommandContext, pending: PendingCommand, previous: Previous | CommandLog
) -> Reply:
    typed = quote(f"{pending.command} {pending.text}")
    when = format_local_time(previous.created_at, ctx.config.zone, ctx.now())
    minutes = max(1, int(ctx.config.duplicate_window.total_seconds() // 60))
    message = (
        f":raised_hand: {typed} records the same as your entry at {when}. "
        "Slack may have shown a timeout although it went through. Record it *again*?"
    )
    value = str(pending.id)
    return Reply(
        text=f"{pending.command} {escape(pending.text)} records the same as your entry at {when}. "
        "Record it again?",
        blocks=[
            section(message),
            actions(
                button("Record again", ACTION_RECORD_AGAIN, value, style="primary"),
                button("Discard", ACTION_DISCARD, value),
                block_id="duplicate",
            ),
            context(f"Nothing has been recorded a second time yet. This choice expires in {minutes} min."),
        ],
    )
