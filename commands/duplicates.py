"""A recording command retyped within minutes (people retype when Slack shows a timeout) is not
recorded twice: the caller is asked whether to record it again or discard it."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import col

from commands.blocks import actions, button, context, escape, section
from commands.common import CommandContext, Reply, format_local_time, normalize_for_duplicates
from commands.parsing import quote
from storage.models import CommandLog, PendingCommand

ACTION_RECORD_AGAIN = "duplicate_record_again"
ACTION_DISCARD = "duplicate_discard"


def check(ctx: CommandContext, text: str) -> Reply | None:
    """A confirmation prompt when `text` repeats the caller's previous recording command, else None."""
    if ctx.confirmed_duplicate or ctx.config.duplicate_window.total_seconds() <= 0:
        return None
    normalized = normalize_for_duplicates(text)
    previous = ctx.session.execute(
        select(CommandLog)
        .where(col(CommandLog.user_id) == ctx.caller.user_id)
        .order_by(col(CommandLog.id).desc())
        .limit(1)
    ).scalar_one_or_none()
    if previous is None or (previous.command, previous.normalized_text) != (ctx.command, normalized):
        return None
    if ctx.now() - previous.created_at > ctx.config.duplicate_window:
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


def remember(ctx: CommandContext, text: str) -> None:
    """Log a recording command that was carried out, for the next duplicate check."""
    ctx.session.add(
        CommandLog(
            user_id=ctx.caller.user_id,
            channel_id=ctx.caller.channel_id,
            command=ctx.command,
            normalized_text=normalize_for_duplicates(text),
            created_at=ctx.now(),
        )
    )


def confirmation_reply(ctx: CommandContext, pending: PendingCommand, previous: CommandLog) -> Reply:
    typed = quote(f"{pending.command} {pending.text}")
    when = format_local_time(previous.created_at, ctx.config.zone, ctx.now())
    message = (
        f":raised_hand: You already recorded {typed} at {when}. "
        "Slack may have shown a timeout although it went through. Record it *again*?"
    )
    value = str(pending.id)
    return Reply(
        text=f"You already recorded {pending.command} {escape(pending.text)} at {when}. Record it again?",
        blocks=[
            section(message),
            actions(
                button("Record again", ACTION_RECORD_AGAIN, value, style="primary"),
                button("Discard", ACTION_DISCARD, value),
                block_id="duplicate",
            ),
            context("Nothing has been recorded a second time yet."),
        ],
    )
