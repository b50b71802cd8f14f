"""`/alert` — the national alert level: parse the sub-command, apply the rules, answer. The notice
workflow (broadcast, acknowledgements, reminders, escalation) is in `commands.notices`, its rendering
in `commands.alert_render`."""

from __future__ import annotations

from sqlmodel import Session

from commands.alert_levels import AlertLevel, AlertScale
from commands.alert_render import ACTION_ACK, acknowledged_line, scale_list, status_message
from commands.blocks import context, section
from commands.common import (
    HELP_WORDS,
    CommandContext,
    Reply,
    UsageError,
    format_local_time,
    mention,
    plural,
)
from commands.countries import country_by_code
from commands.notices import broadcast, record_acknowledgement, status_rows
from commands.parsing import quote
from commands.permissions import require_ops, standing
from commands.slack_text import show
from storage import alerts, directory
from storage.db import serialize_on
from storage.models import AlertNotice

__all__ = ["ACTION_ACK", "COMMAND", "RECORDS", "acknowledge", "handle"]

COMMAND = "/alert"
RECORDS = False
MIN_REASON = 3
MAX_REASON = 500

HELP = "\n".join(
    [
        "*/alert* — the national alert level.",
        "• `/alert` — the current level, since when, who set it and why, and who has acknowledged",
        "• `/alert raise <level> <reason>` · `/alert lower <level> <reason>` · `/alert set <level> <reason>` "
        "— ops and admins; a notice goes to every liaison channel",
        "• `/alert ack` — acknowledge the current notice for this channel's country (or press *Acknowledge*); "
        "ops and admins who are not the country's liaison acknowledge *on its behalf*, and it shows",
        "• `/alert status` — acknowledgement per country: who, when, or pending for how long",
    ]
)


def handle(text: str, ctx: CommandContext) -> Reply:
    words = text.split()
    if not words:
        return current_reply(ctx)
    sub = words[0].lower()
    if sub in HELP_WORDS:
        return Reply(
            text=HELP,
            blocks=[section(HELP), context(f"Levels, lowest first: {scale_list(ctx.config.alert_scale)}.")],
        )
    if sub in ("raise", "lower", "set"):
        return change_level(sub, words[1:], ctx)
    if sub in ("ack", "acknowledge"):
        if len(words) > 1:
            raise UsageError("`/alert ack` takes nothing after it.")
        return acknowledge_in_channel(ctx)
    if sub == "status":
        return status_reply(ctx)
    raise UsageError(f"`/alert` has no sub-command {quote(sub)}.", hint="Type `/alert help` for the list.")


def current_level(session: Session, scale: AlertScale) -> tuple[AlertLevel, AlertNotice | None]:
    notice = alerts.current_notice(session)
    return (scale[notice.level], notice) if notice else (scale.lowest, None)


def change_level(direction: str, args: list[str], ctx: CommandContext) -> Reply:
    scale = ctx.config.alert_scale
    if not args:
        raise UsageError(
            f"Which level? `/alert {direction} <level> <reason>`.", hint=f"Levels: {scale_list(scale)}."
        )
    level = scale.get(args[0])
    if level is None:
        raise UsageError(f"There is no alert level {quote(args[0])}.", hint=f"Levels: {scale_list(scale)}.")
    reason = " ".join(args[1:]).strip()
    if len(reason) < MIN_REASON:
        raise UsageError(
            "A reason is required: it is sent to every liaison channel with the notice.",
            hint=f"e.g. `/alert {direction} {level.key} credible threat against the opening ceremony`",
        )
    if len(reason) > MAX_REASON:
        raise UsageError(f"The reason is too long ({len(reason)} characters, at most {MAX_REASON}).")
    require_ops(ctx, "raise or lower the alert level")
    serialize_on(ctx.session, "alert-level")
    current, _ = current_level(ctx.session, scale)
    if level.key == current.key:
        raise UsageError(f"The alert level is already *{level.label}*.")
    if direction == "raise" and level.rank < current.rank:
        raise UsageError(f"*{level.label}* is lower than the current *{current.label}*: use `/alert lower`.")
    if direction == "lower" and level.rank > current.rank:
        raise UsageError(f"*{level.label}* is higher than the current *{current.label}*: use `/alert raise`.")
    notice = AlertNotice(
        level=level.key,
        previous_level=current.key,
        reason=reason,
        set_by=ctx.caller.user_id,
        created_at=ctx.now(),
    )
    ctx.session.add(notice)
    ctx.session.flush()
    channels = broadcast(ctx.session, notice, ctx.config, ctx.now())
    countries = len({link.country for link in channels})
    verb = {"raise": "raised", "lower": "lowered"}.get(direction, "set")
    text = (
        f":{level.emoji}: Alert level {verb} to *{level.label}* by {mention(ctx.caller.user_id)}. "
        f"Notice #{notice.id} is on its way to {plural(len(channels), 'liaison channel')} "
        f"({plural(countries, 'country', 'countries')})."
    )
    extra = (
        []
        if channels
        else [context(":warning: No liaison channel is linked yet: `/liaison link <country>` in each.")]
    )
    return Reply(text=text, blocks=[section(text), *extra], in_channel=True)


def acknowledge_in_channel(ctx: CommandContext) -> Reply:
    notice = alerts.current_notice(ctx.session)
    if notice is None or notice.id is None:
        raise UsageError("There is no alert notice to acknowledge.")
    return acknowledge(ctx, notice.id)


def acknowledge(ctx: CommandContext, notice_id: int) -> Reply:
    """Acknowledge a notice for the country of the caller's channel. Idempotent per country.

    The country's liaison officers acknowledge for it; ops and admins who are not among them
    acknowledge on its behalf (recorded and shown so); anyone else is refused."""
    link = directory.link_of(ctx.session, ctx.caller.channel_id)
    if link is None:
        raise UsageError(
            "This channel is not a country's liaison channel.",
            hint="Acknowledge in your country's liaison channel (an admin links it with `/liaison link <country>`).",
        )
    notice = alerts.notice(ctx.session, notice_id)
    if notice is None or notice.id is None:
        raise UsageError("That notice does not exist any more.")
    latest = alerts.current_notice(ctx.session)
    if latest is not None and latest.id != notice.id:
        raise UsageError(
            f"Notice #{notice.id} was superseded by notice #{latest.id}.",
            hint="Acknowledge the current one: `/alert ack` or its button.",
        )
    country = country_by_code(link.country)
    if not alerts.deliveries(ctx.session, notice.id, link.country):
        raise UsageError(
            f"Notice #{notice.id} was not sent to {country.name}, so there is nothing to acknowledge."
        )
    who = standing(ctx, country)
    if not (who.is_liaison or who.is_ops):
        raise who.refuse(f"acknowledge for {country.name}")
    ack, created = record_acknowledgement(
        ctx.session,
        notice,
        link.country,
        user_id=ctx.caller.user_id,
        channel_id=ctx.caller.channel_id,
        on_behalf=not who.is_liaison,
        config=ctx.config,
        now=ctx.now(),
    )
    when = format_local_time(ack.created_at, ctx.config.zone, ctx.now())
    if not created:
        text = f"{country.name} already acknowledged notice #{notice.id}: {mention(ack.user_id)} at {when}."
        return Reply(text=text, blocks=[section(f":white_check_mark: {text}")])
    if ack.on_behalf:
        text = (
            f":ballot_box_with_check: {mention(ack.user_id)} acknowledged notice #{notice.id} "
            f"*on behalf of {country.name}* at {when}."
        )
        note = acknowledged_line(ack, country.name, ctx.config, ctx.now())
        return Reply(text=text, blocks=[section(text), context(note)], in_channel=True)
    text = f":white_check_mark: {mention(ack.user_id)} acknowledged notice #{notice.id} for *{country.name}* at {when}."
    return Reply(text=text, blocks=[section(text)], in_channel=True)


def current_reply(ctx: CommandContext) -> Reply:
    level, notice = current_level(ctx.session, ctx.config.alert_scale)
    if notice is None or notice.id is None:
        text = f":{level.emoji}: The alert level is *{level.label}* (no notice has been issued yet)."
        return Reply(
            text=text, blocks=[section(text), context(f"Levels: {scale_list(ctx.config.alert_scale)}")]
        )
    when = format_local_time(notice.created_at, ctx.config.zone, ctx.now())
    countries = {d.country for d in alerts.deliveries(ctx.session, notice.id)}
    acked = alerts.acknowledgement_count(ctx.session, notice.id)
    text = (
        f":{level.emoji}: The alert level is *{level.label}* since {when} ({ctx.config.zone.key}), "
        f"set by {mention(notice.set_by)}.\n*Reason:* {show(notice.reason)}"
    )
    acks = (
        f"Acknowledged by {acked} of {plural(len(countries), 'country', 'countries')} · notice #{notice.id}"
    )
    return Reply(text=text, blocks=[section(text), context(acks + " · `/alert status` for details")])


def status_reply(ctx: CommandContext) -> Reply:
    _, notice = current_level(ctx.session, ctx.config.alert_scale)
    if notice is None or notice.id is None:
        return Reply(
            text="No alert notice has been issued yet.",
            blocks=[section("No alert notice has been issued yet.")],
        )
    rows = status_rows(ctx.session, notice.id)
    unlinked = sorted(
        {a.country for a in directory.assignments(ctx.session)} - {row.country for row in rows},
        key=lambda c: country_by_code(c).name,
    )
    text, blocks = status_message(notice, ctx.config, rows, unlinked, ctx.now())
    return Reply(text=text, blocks=blocks)
