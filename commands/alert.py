"""`/alert` — the national alert level: notices broadcast to every liaison channel, acknowledged by
each country, with reminders for the silent ones and an acknowledgement matrix for ops."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from commands.alert_levels import AlertLevel, AlertScale
from commands.blocks import Block, actions, button, context, escape, header, section, text_sections
from commands.common import (
    CommandConfig,
    CommandContext,
    Reply,
    UsageError,
    format_local_time,
    mention,
    plural,
)
from commands.countries import country_by_code
from commands.movements import flag
from commands.parsing import quote
from commands.permissions import may_acknowledge, require_ops
from storage import alerts, directory, outbox
from storage.db import serialize_on
from storage.models import Acknowledgement, AlertNotice, NoticeDelivery, OutboxStatus

COMMAND = "/alert"
RECORDS = False
ACTION_ACK = "alert_ack"
MIN_REASON = 3
MAX_REASON = 500
MAX_STATUS_TEXT = 10_000  # the matrix's lines; pending and failed countries come first

HELP = "\n".join(
    [
        "*/alert* — the national alert level.",
        "• `/alert` — the current level, since when, who set it and why, and who has acknowledged",
        "• `/alert raise <level> <reason>` · `/alert lower <level> <reason>` · `/alert set <level> <reason>` "
        "— ops and admins; a notice goes to every liaison channel",
        "• `/alert ack` — acknowledge the current notice for this channel's country (or press *Acknowledge*)",
        "• `/alert status` — acknowledgement per country: who, when, or pending for how long",
    ]
)


def handle(text: str, ctx: CommandContext) -> Reply:
    words = text.split()
    if not words:
        return current_reply(ctx)
    sub = words[0].lower()
    if sub in ("help", "?", "-h", "--help"):
        return Reply(
            text=HELP,
            blocks=[section(HELP), context(f"Levels, lowest first: {_scale_list(ctx.config.alert_scale)}.")],
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


def _scale_list(scale: AlertScale) -> str:
    return " < ".join(f"`{level.key}` ({level.label})" for level in scale)


def current_level(session: Session, scale: AlertScale) -> tuple[AlertLevel, AlertNotice | None]:
    notice = alerts.current_notice(session)
    return (scale[notice.level], notice) if notice else (scale.lowest, None)


# -- changing the level ----------------------------------------------------------------------------


def change_level(direction: str, args: list[str], ctx: CommandContext) -> Reply:
    scale = ctx.config.alert_scale
    if not args:
        raise UsageError(
            f"Which level? `/alert {direction} <level> <reason>`.", hint=f"Levels: {_scale_list(scale)}."
        )
    level = scale.get(args[0])
    if level is None:
        raise UsageError(f"There is no alert level {quote(args[0])}.", hint=f"Levels: {_scale_list(scale)}.")
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


def broadcast(
    session: Session, notice: AlertNotice, config: CommandConfig, now: datetime
) -> list[NoticeDeliveryTarget]:
    """The notice, with an Acknowledge button, to every linked channel; and a tracker to ops."""
    assert notice.id is not None
    targets = [NoticeDeliveryTarget(link.channel_id, link.country) for link in directory.links(session)]
    for target in targets:
        _deliver(session, notice, target, config, now, ack=None)
    if config.ops_channel:
        text, blocks = ops_tracker(session, notice, config, now)
        tracker = outbox.post_message(
            session,
            config.ops_channel,
            text=text,
            blocks=blocks,
            attachments=level_bar(notice, config),
            now=now,
            priority=outbox.URGENT,
        )
        notice.ops_message_id = tracker.id
        session.add(notice)
    session.flush()
    return targets


@dataclass(frozen=True)
class NoticeDeliveryTarget:
    channel: str
    country: str


def _deliver(
    session: Session,
    notice: AlertNotice,
    target: NoticeDeliveryTarget,
    config: CommandConfig,
    now: datetime,
    *,
    ack: Acknowledgement | None,
) -> None:
    """Post the notice to one channel and remember where, for acknowledgements and reminders."""
    assert notice.id is not None
    text, blocks = notice_message(notice, config, country=target.country, ack=ack, now=now)
    message = outbox.post_message(
        session,
        target.channel,
        text=text,
        blocks=blocks,
        attachments=level_bar(notice, config),
        now=now,
        priority=outbox.URGENT,  # alert notices go before routine messages
    )
    assert message.id is not None
    session.add(
        NoticeDelivery(
            notice_id=notice.id, country=target.country, channel_id=target.channel, message_id=message.id
        )
    )
    session.flush()


def deliver_current_to(
    session: Session, channel: str, country: str, config: CommandConfig, now: datetime
) -> bool:
    """A channel linked while a notice is current gets that notice too (a country must not miss it)."""
    notice = alerts.current_notice(session)
    if notice is None or notice.id is None:
        return False
    if any(d.channel_id == channel for d in alerts.deliveries(session, notice.id)):
        return False
    ack = alerts.acknowledgements(session, notice.id).get(country)
    _deliver(session, notice, NoticeDeliveryTarget(channel, country), config, now, ack=ack)
    _refresh_ops_tracker(session, notice, config, now)
    return True


def _refresh_ops_tracker(session: Session, notice: AlertNotice, config: CommandConfig, now: datetime) -> None:
    """Edit the ops channel's tracker of the notice to the current acknowledgement count."""
    if notice.ops_message_id is None:
        return
    tracker = outbox.get(session, notice.ops_message_id)
    if tracker is not None:
        text, blocks = ops_tracker(session, notice, config, now)
        outbox.update_message(
            session, tracker, text=text, blocks=blocks, attachments=level_bar(notice, config), now=now
        )


def notice_message(
    notice: AlertNotice,
    config: CommandConfig,
    *,
    country: str | None,
    ack: Acknowledgement | None,
    now: datetime,
) -> tuple[str, list[Block]]:
    scale = config.alert_scale
    level, previous = scale[notice.level], scale[notice.previous_level]
    when = format_local_time(notice.created_at, config.zone, now)
    direction = "raised" if level.rank > previous.rank else "lowered"
    blocks: list[Block] = [
        header(f"Alert level {direction}: {level.label}"),
        section(
            f":{level.emoji}: *{level.label}* (was {previous.label})\n*Reason:* {escape(notice.reason)}",
        ),
        context(f"Notice #{notice.id} · set by {mention(notice.set_by)} at {when} ({config.zone.key})"),
    ]
    name = country_by_code(country).name if country else None
    if ack is not None:
        acked_at = format_local_time(ack.created_at, config.zone, now)
        blocks.append(
            section(f":white_check_mark: Acknowledged for *{name}* by {mention(ack.user_id)} at {acked_at}")
        )
    elif country is not None:
        blocks.append(
            actions(
                button(f"Acknowledge for {name}", ACTION_ACK, str(notice.id), style="primary"),
                block_id="alert_ack",
            )
        )
    text = f"Alert level {direction} to {level.label} (was {previous.label}). Reason: {escape(notice.reason)}"
    return text, blocks


def level_bar(notice: AlertNotice, config: CommandConfig) -> list[dict[str, str]]:
    """The level's colour as the message's side bar (Block Kit itself has no colour)."""
    scale = config.alert_scale
    level = scale[notice.level]
    position = (
        f"level {level.rank + 1} of {len(scale.keys())}" if level.rank >= 0 else "level no longer configured"
    )
    text = f"{level.label} — {position}"
    return [{"color": level.colour, "fallback": text, "text": text}]


def ops_tracker(
    session: Session, notice: AlertNotice, config: CommandConfig, now: datetime
) -> tuple[str, list[Block]]:
    assert notice.id is not None
    text, blocks = notice_message(notice, config, country=None, ack=None, now=now)
    countries = {d.country for d in alerts.deliveries(session, notice.id)}
    acked = alerts.acknowledgements(session, notice.id)
    pending = sorted(country_by_code(c).name for c in countries - set(acked))
    summary = f":busts_in_silhouette: Acknowledged by *{len(acked)} of {plural(len(countries), 'country', 'countries')}*."
    if pending:
        summary += " Waiting for: " + ", ".join(pending[:40]) + ("…" if len(pending) > 40 else "")
    blocks.append(section(summary))
    blocks.append(context("`/alert status` for the full matrix."))
    return f"{text} — acknowledged {len(acked)}/{len(countries)}", blocks


# -- acknowledging ---------------------------------------------------------------------------------


def acknowledge_in_channel(ctx: CommandContext) -> Reply:
    notice = alerts.current_notice(ctx.session)
    if notice is None or notice.id is None:
        raise UsageError("There is no alert notice to acknowledge.")
    return acknowledge(ctx, notice.id)


def acknowledge(ctx: CommandContext, notice_id: int) -> Reply:
    """Acknowledge a notice for the country of the caller's channel. Idempotent per country."""
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
    if not may_acknowledge(ctx, link.country, ctx.caller.user_id):
        liaisons = directory.liaisons_of(ctx.session, link.country)
        raise UsageError(
            f"Only {country.name}'s liaison officers, ops or an admin can acknowledge for {country.name}.",
            hint=f"{country.name}'s liaisons: {', '.join(mention(u) for u in liaisons[:10])}.",
        )
    ack, created = alerts.acknowledge(
        ctx.session,
        notice_id=notice.id,
        country=link.country,
        user_id=ctx.caller.user_id,
        channel_id=ctx.caller.channel_id,
        now=ctx.now(),
    )
    when = format_local_time(ack.created_at, ctx.config.zone, ctx.now())
    if not created:
        text = f"{country.name} already acknowledged notice #{notice.id}: {mention(ack.user_id)} at {when}."
        return Reply(text=text, blocks=[section(f":white_check_mark: {text}")])
    _show_acknowledgement(ctx.session, notice, link.country, ack, ctx.config, ctx.now())
    text = f":white_check_mark: {mention(ack.user_id)} acknowledged notice #{notice.id} for *{country.name}* at {when}."
    return Reply(text=text, blocks=[section(text)], in_channel=True)


def _show_acknowledgement(
    session: Session,
    notice: AlertNotice,
    country: str,
    ack: Acknowledgement,
    config: CommandConfig,
    now: datetime,
) -> None:
    """Edit the notice in place in the country's channels, and the ops tracker."""
    assert notice.id is not None
    text, blocks = notice_message(notice, config, country=country, ack=ack, now=now)
    for delivery in alerts.deliveries(session, notice.id, country):
        original = outbox.get(session, delivery.message_id)
        if original is not None:
            outbox.update_message(
                session, original, text=text, blocks=blocks, attachments=level_bar(notice, config), now=now
            )
    _refresh_ops_tracker(session, notice, config, now)


# -- reading -----------------------------------------------------------------------------------------


def current_reply(ctx: CommandContext) -> Reply:
    level, notice = current_level(ctx.session, ctx.config.alert_scale)
    if notice is None or notice.id is None:
        text = f":{level.emoji}: The alert level is *{level.label}* (no notice has been issued yet)."
        return Reply(
            text=text, blocks=[section(text), context(f"Levels: {_scale_list(ctx.config.alert_scale)}")]
        )
    when = format_local_time(notice.created_at, ctx.config.zone, ctx.now())
    countries = {d.country for d in alerts.deliveries(ctx.session, notice.id)}
    acked = alerts.acknowledgement_count(ctx.session, notice.id)
    text = (
        f":{level.emoji}: The alert level is *{level.label}* since {when} ({ctx.config.zone.key}), "
        f"set by {mention(notice.set_by)}.\n*Reason:* {escape(notice.reason)}"
    )
    acks = (
        f"Acknowledged by {acked} of {plural(len(countries), 'country', 'countries')} · notice #{notice.id}"
    )
    return Reply(text=text, blocks=[section(text), context(acks + " · `/alert status` for details")])


@dataclass(frozen=True)
class StatusRow:
    country: str
    channels: tuple[str, ...]
    ack: Acknowledgement | None
    failures: tuple[str, ...]


def status_reply(ctx: CommandContext) -> Reply:
    level, notice = current_level(ctx.session, ctx.config.alert_scale)
    if notice is None or notice.id is None:
        return Reply(
            text="No alert notice has been issued yet.",
            blocks=[section("No alert notice has been issued yet.")],
        )
    rows = _status_rows(ctx.session, notice.id)
    now = ctx.now()
    pending_for = _minutes(now - notice.created_at)
    lines: list[str] = []
    for row in sorted(rows, key=lambda r: (r.ack is not None, country_by_code(r.country).name)):
        country = country_by_code(row.country)
        rooms = ", ".join(f"<#{c}>" for c in row.channels)
        if row.failures:
            state = f":warning: *not delivered* ({', '.join(sorted(set(row.failures)))})"
        elif row.ack is not None:
            state = f":white_check_mark: {mention(row.ack.user_id)} at {format_local_time(row.ack.created_at, ctx.config.zone, now)}"
        else:
            state = f":hourglass_flowing_sand: pending for {pending_for}"
        lines.append(f"{flag(country)} *{country.name}* · {rooms} — {state}")
    unlinked = sorted(
        {a.country for a in directory.assignments(ctx.session)} - {row.country for row in rows},
        key=lambda c: country_by_code(c).name,
    )
    acked = sum(1 for row in rows if row.ack is not None)
    shown = _within(lines, MAX_STATUS_TEXT)
    blocks: list[Block] = [
        header(f"Alert notice #{notice.id} — {level.label}"),
        section(
            f"Acknowledged by *{acked} of {plural(len(rows), 'country', 'countries')}* · issued {pending_for} ago"
        ),
        *text_sections(shown),
    ]
    if len(shown) < len(lines):
        blocks.append(
            context(
                f":scissors: {plural(len(lines) - len(shown), 'more country', 'more countries')} not shown."
            )
        )
    if unlinked:
        names = ", ".join(country_by_code(c).name for c in unlinked)
        blocks.append(context(f":warning: Liaisons but no linked channel, so not notified: {names}"))
    return Reply(
        text=f"Notice #{notice.id}: acknowledged by {acked} of {len(rows)} countries.", blocks=blocks
    )


def _within(lines: list[str], budget: int) -> list[str]:
    """The first lines that fit in `budget` characters (Slack refuses messages of ~13k characters)."""
    kept: list[str] = []
    for line in lines:
        budget -= len(line) + 1
        if budget < 0:
            break
        kept.append(line)
    return kept


def _status_rows(session: Session, notice_id: int) -> list[StatusRow]:
    acks = alerts.acknowledgements(session, notice_id)
    channels: dict[str, list[str]] = {}
    failures: dict[str, list[str]] = {}
    for delivery in alerts.deliveries(session, notice_id):
        channels.setdefault(delivery.country, []).append(delivery.channel_id)
        message = outbox.get(session, delivery.message_id)
        if message is not None and message.status == OutboxStatus.FAILED:
            failures.setdefault(delivery.country, []).append(message.last_error or "failed")
    return [
        StatusRow(country, tuple(rooms), acks.get(country), tuple(failures.get(country, ())))
        for country, rooms in channels.items()
    ]


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


# -- silence: reminders and escalation -----------------------------------------------------------------


def send_reminders(session: Session, config: CommandConfig, now: datetime) -> int:
    """Remind silent countries after one period, tell ops after two. Safe to run from any number of
    processes at once: each reminder and escalation is claimed in the database before it is sent."""
    notice = alerts.current_notice(session)
    if notice is None or notice.id is None:
        return 0
    elapsed = now - notice.created_at
    if elapsed < config.ack_remind:
        return 0
    silent = _silent_deliveries(session, notice.id)
    sent = 0
    for delivery, sent_at in silent:
        if (
            now - sent_at >= config.ack_remind
            and delivery.reminded_at is None
            and delivery.id is not None
            and alerts.claim_reminder(session, delivery.id, now)
        ):
            _remind(session, notice, delivery, config, now, sent_at)
            sent += 1
    if config.ops_channel:
        escalated = [
            d
            for d, sent_at in silent
            if now - sent_at >= 2 * config.ack_remind
            and d.escalated_at is None
            and d.id is not None
            and alerts.claim_escalation(session, d.id, now)
        ]
        if escalated:
            _escalate(session, notice, escalated, config, now)
            sent += 1
    return sent


def _silent_deliveries(session: Session, notice_id: int) -> list[tuple[NoticeDelivery, datetime]]:
    """Deliveries of countries that have not acknowledged, with when each was sent: a channel linked
    later got the notice later. A notice that never arrived is left out: ops were told it failed
    (and `/alert status` shows it), and a reminder in its thread could not arrive either."""
    acked = alerts.acknowledgements(session, notice_id)
    silent: list[tuple[NoticeDelivery, datetime]] = []
    for delivery in alerts.deliveries(session, notice_id):
        original = outbox.get(session, delivery.message_id)
        if delivery.country in acked or original is None or original.status == OutboxStatus.FAILED:
            continue
        silent.append((delivery, original.created_at))
    return silent


def _remind(
    session: Session,
    notice: AlertNotice,
    delivery: NoticeDelivery,
    config: CommandConfig,
    now: datetime,
    sent_at: datetime,
) -> None:
    country = country_by_code(delivery.country)
    liaisons = directory.liaisons_of(session, delivery.country)
    who = " ".join(mention(user) for user in liaisons) or "Liaison officers of this channel"
    minutes = _minutes(now - sent_at)
    level = config.alert_scale[notice.level]
    text = (
        f":bell: {who} — {country.name} has not acknowledged alert notice #{notice.id} "
        f"(*{level.label}*) sent {minutes} ago. Press *Acknowledge* on the notice or type `/alert ack`."
    )
    original = outbox.get(session, delivery.message_id)
    outbox.post_message(
        session, delivery.channel_id, text=text, blocks=[section(text)], now=now, thread_under=original
    )


def _escalate(
    session: Session,
    notice: AlertNotice,
    deliveries: list[NoticeDelivery],
    config: CommandConfig,
    now: datetime,
) -> None:
    assert config.ops_channel is not None
    by_country: Mapping[str, list[str]] = {
        d.country: directory.liaisons_of(session, d.country) for d in deliveries
    }
    lines = []
    for code, liaisons in sorted(by_country.items(), key=lambda kv: country_by_code(kv[0]).name):
        people = ", ".join(mention(u) for u in liaisons) or "no liaison assigned"
        lines.append(f"• {flag(country_by_code(code))} *{country_by_code(code).name}* — {people}")
    minutes = _minutes(now - notice.created_at)
    head = f":rotating_light: Still silent {minutes} after alert notice #{notice.id}, even after a reminder:"
    tracker = outbox.get(session, notice.ops_message_id) if notice.ops_message_id else None
    outbox.post_message(
        session,
        config.ops_channel,
        text=f"{head} " + ", ".join(country_by_code(c).name for c in by_country),
        blocks=[section(head), *text_sections(lines)],
        now=now,
        thread_under=tracker if tracker is not None and tracker.lane == config.ops_channel else None,
    )
