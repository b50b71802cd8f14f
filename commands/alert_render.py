"""How alert notices look: the notice in a liaison channel, the ops tracker, the acknowledgement
matrix, reminders and the escalation to ops. Pure functions of what the database holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from commands.alert_levels import AlertScale
from commands.blocks import (
    MAX_FALLBACK_TEXT,
    Block,
    actions,
    button,
    context,
    header,
    section,
    summarised_sections,
    truncate,
)
from commands.common import CommandConfig, format_local_time, mention, plural
from commands.countries import country_by_code, flag
from commands.slack_text import show
from storage.models import Acknowledgement, AlertNotice

ACTION_ACK = "alert_ack"
MAX_PENDING_NAMES = 40
MAX_PEOPLE = 20  # mentions in one reminder or escalation line


def scale_list(scale: AlertScale) -> str:
    return " < ".join(f"`{level.key}` ({level.label})" for level in scale)


def minutes(delta: timedelta) -> str:
    total = int(delta.total_seconds() // 60)
    if total < 60:
        return f"{total} min"
    return f"{total // 60} h {total % 60:02d} min"


def acknowledged_line(ack: Acknowledgement, country_name: str, config: CommandConfig, now: datetime) -> str:
    when = format_local_time(ack.created_at, config.zone, now)
    if ack.on_behalf:
        return (
            f":ballot_box_with_check: Acknowledged on behalf of *{country_name}* by {mention(ack.user_id)} "
            f"at {when} (for the operations centre, not one of {country_name}'s liaison officers)"
        )
    return f":white_check_mark: Acknowledged for *{country_name}* by {mention(ack.user_id)} at {when}"


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
    reason = show(notice.reason)
    blocks: list[Block] = [
        header(f"Alert level {direction}: {level.label}"),
        section(f":{level.emoji}: *{level.label}* (was {previous.label})\n*Reason:* {reason}"),
        context(f"Notice #{notice.id} · set by {mention(notice.set_by)} at {when} ({config.zone.key})"),
    ]
    name = country_by_code(country).name if country else None
    if ack is not None and name is not None:
        blocks.append(section(acknowledged_line(ack, name, config, now)))
    elif country is not None:
        blocks.append(
            actions(
                button(f"Acknowledge for {name}", ACTION_ACK, str(notice.id), style="primary"),
                block_id="alert_ack",
            )
        )
    text = f"Alert level {direction} to {level.label} (was {previous.label}). Reason: {reason}"
    return truncate(text, MAX_FALLBACK_TEXT), blocks


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
    notice: AlertNotice,
    config: CommandConfig,
    countries: set[str],
    acks: dict[str, Acknowledgement],
    now: datetime,
) -> tuple[str, list[Block]]:
    text, blocks = notice_message(notice, config, country=None, ack=None, now=now)
    pending = sorted(country_by_code(c).name for c in countries - set(acks))
    on_behalf = sum(1 for ack in acks.values() if ack.on_behalf)
    summary = f":busts_in_silhouette: Acknowledged by *{len(acks)} of {plural(len(countries), 'country', 'countries')}*."
    if on_behalf:
        summary += f" ({on_behalf} on their behalf by ops.)"
    if pending:
        summary += " Waiting for: " + ", ".join(pending[:MAX_PENDING_NAMES])
        if len(pending) > MAX_PENDING_NAMES:
            summary += f" and {len(pending) - MAX_PENDING_NAMES} more"
    blocks.append(section(summary))
    blocks.append(context("`/alert status` for the full matrix."))
    return truncate(f"{text} — acknowledged {len(acks)}/{len(countries)}", MAX_FALLBACK_TEXT), blocks


@dataclass(frozen=True)
class StatusRow:
    country: str
    channels: tuple[str, ...]
    ack: Acknowledgement | None
    failures: tuple[str, ...]


def status_message(
    notice: AlertNotice,
    config: CommandConfig,
    rows: Sequence[StatusRow],
    unlinked: Sequence[str],
    now: datetime,
) -> tuple[str, list[Block]]:
    """The acknowledgement matrix: pending and failed countries first, then the acknowledged."""
    level = config.alert_scale[notice.level]
    pending_for = minutes(now - notice.created_at)
    lines: list[str] = []
    for row in sorted(rows, key=lambda r: (r.ack is not None, country_by_code(r.country).name)):
        country = country_by_code(row.country)
        rooms = ", ".join(f"<#{c}>" for c in row.channels)
        if row.failures:
            state = f":warning: *not delivered* ({', '.join(sorted(set(row.failures)))})"
        elif row.ack is not None:
            when = format_local_time(row.ack.created_at, config.zone, now)
            by = "on its behalf by " if row.ack.on_behalf else ""
            state = f":white_check_mark: {by}{mention(row.ack.user_id)} at {when}"
        else:
            state = f":hourglass_flowing_sand: pending for {pending_for}"
        lines.append(f"{flag(country)} *{country.name}* · {rooms} — {state}")
    acked = sum(1 for row in rows if row.ack is not None)
    blocks: list[Block] = [
        header(f"Alert notice #{notice.id} — {level.label}"),
        section(
            f"Acknowledged by *{acked} of {plural(len(rows), 'country', 'countries')}* · issued {pending_for} ago"
        ),
        *summarised_sections(lines, "pending and undelivered countries are listed first"),
    ]
    if unlinked:
        names = [country_by_code(c).name for c in unlinked]
        shown = ", ".join(names[:MAX_PENDING_NAMES])
        if len(names) > MAX_PENDING_NAMES:
            shown += f" and {len(names) - MAX_PENDING_NAMES} more (`/liaison who`)"
        blocks.append(context(f":warning: Liaisons but no linked channel, so not notified: {shown}"))
    return f"Notice #{notice.id}: acknowledged by {acked} of {len(rows)} countries.", blocks


def reminder_text(
    notice: AlertNotice, config: CommandConfig, country: str, liaisons: Sequence[str], waited: timedelta
) -> str:
    who = " ".join(mention(user) for user in liaisons[:MAX_PEOPLE]) or "Liaison officers of this channel"
    level = config.alert_scale[notice.level]
    name = country_by_code(country).name
    return (
        f":bell: {who} — {name} has not acknowledged alert notice #{notice.id} "
        f"(*{level.label}*) sent {minutes(waited)} ago. Press *Acknowledge* on the notice or type `/alert ack`."
    )


def escalation_message(
    notice: AlertNotice, silent: dict[str, list[str]], now: datetime
) -> tuple[str, list[Block]]:
    """Ops are told which countries are still silent, and whom to call; a long list is summarised."""
    ordered = sorted(silent.items(), key=lambda kv: country_by_code(kv[0]).name)
    lines = []
    for code, liaisons in ordered:
        people = ", ".join(mention(u) for u in liaisons[:MAX_PEOPLE]) or "no liaison assigned"
        lines.append(f"• {flag(country_by_code(code))} *{country_by_code(code).name}* — {people}")
    head = (
        f":rotating_light: Still silent {minutes(now - notice.created_at)} after alert notice #{notice.id}, "
        f"even after a reminder: {plural(len(silent), 'country', 'countries')}."
    )
    names = ", ".join(country_by_code(code).name for code, _ in ordered)
    blocks = [section(head), *summarised_sections(lines, "`/alert status` shows every country")]
    return truncate(f"{head} {names}", MAX_FALLBACK_TEXT), blocks
