"""Rules and rendering shared by `/arrivals` and `/departures`: both write the movement ledger."""

from __future__ import annotations

from dataclasses import dataclass

from commands import duplicates, permissions
from commands.blocks import Block, context, header, percent, progress_bar, section, text_sections
from commands.capabilities import Capability
from commands.common import (
    HELP_WORDS,
    CommandContext,
    LateReply,
    Reply,
    UsageError,
    format_local_time,
    local_day_start,
    mention,
    plural,
)
from commands.countries import Country, country_by_code, flag
from commands.parsing import Tail, count_from, parse_tail, split_country_and_count
from commands.permissions import require_can_record, standing_soon
from commands.slack_text import show
from storage import gates, ledger, recording, totals
from storage.db import serialize_on
from storage.ledger import Bucket
from storage.models import Movement, MovementKind
from storage.recording import Entry

TODAY_LIMIT = 40


@dataclass(frozen=True)
class Record:
    country: Country
    count: int
    tail: Tail


@dataclass(frozen=True)
class Undo:
    pass


@dataclass(frozen=True)
class Today:
    pass


@dataclass(frozen=True)
class Help:
    pass


Request = Record | Undo | Today | Help

VERB = {MovementKind.ARRIVAL: "arrived", MovementKind.DEPARTURE: "left"}
EMOJI = {MovementKind.ARRIVAL: ":airplane_arriving:", MovementKind.DEPARTURE: ":airplane_departure:"}


def usage(command: str) -> str:
    return f"`{command} <country> <number> [capability] [at <place>] [-- <note>]`"


def help_reply(command: str, kind: MovementKind, ctx: CommandContext) -> Reply:
    noun = "arrivals" if kind is MovementKind.ARRIVAL else "departures"
    capabilities = ", ".join(f"`{c.key}`" for c in ctx.config.vocabulary)
    minutes = int(ctx.config.undo_window.total_seconds() // 60)
    lines = [
        f"*{command}* — record {noun} of a contingent's personnel.",
        f"• {usage(command)}",
        f"  e.g. `{command} poland 40`, `{command} PL 12 dog-team at CDG -- 2 handlers, 4 dogs`",
        f"• `{command}` — today's movements",
        f"• `{command} undo` — reverse your own last {kind.value} entry (within {minutes} minutes)",
        f"• `{command} help` — this help",
        f"Countries: English name or ISO code (`poland`, `PL`, `POL`). Capabilities: {capabilities}.",
        f"One entry records 1 to {ctx.config.max_per_entry:,} people.",
    ]
    return Reply(text="\n".join(lines), blocks=[section("\n".join(lines))])


def parse(text: str, command: str, ctx: CommandContext) -> Request:
    tokens = text.split()
    if not tokens:
        return Today()
    first = tokens[0].lower()
    if first in HELP_WORDS:
        if len(tokens) > 1:
            raise UsageError(f"`{command} help` takes nothing after it.", hint=f"Usage: {usage(command)}")
        return Help()
    if first in ("undo", "today", "list"):
        if len(tokens) > 1:
            raise UsageError(f"`{command} {first}` takes nothing after it.", hint=f"Usage: {usage(command)}")
        return Undo() if first == "undo" else Today()
    country, count_token, rest = split_country_and_count(tokens, usage(command))
    count = count_from(count_token, maximum=ctx.config.max_per_entry)
    tail = parse_tail(rest, ctx.config.vocabulary, usage(command))
    return Record(country=country, count=count, tail=tail)


def handle(text: str, kind: MovementKind, ctx: CommandContext) -> Reply | LateReply:
    request = parse(text, ctx.command, ctx)
    if isinstance(request, Help):
        return help_reply(ctx.command, kind, ctx)
    if isinstance(request, Today):
        return today_reply(ctx)
    if isinstance(request, Undo):
        return undo(kind, ctx)
    return record(request, kind, text, ctx)


def record(request: Record, kind: MovementKind, text: str, ctx: CommandContext) -> Reply | LateReply:
    country, capability = request.country, request.tail.capability
    cap_key = capability.key if capability else None
    key = duplicates.meaning(kind.value, country.code, request.count, cap_key, request.tail.location)
    if gates.optimistic(ctx.session):
        # The checks below, made by the server in the round trip that records and commits: if one
        # fails, nothing stands and this runs again step by step, to refuse or ask (storage.gates).
        _serialize(ctx, kind, country)
        checks = [permissions.may_not_record(ctx, country), duplicates.retyped(ctx, key)]
        if kind is MovementKind.DEPARTURE:
            checks.append(totals.short_of(country.code, cap_key, request.count))
        gates.refuse_if_any(ctx.session, [check for check in checks if check is not None])
    else:
        # The caller's standing, the lock and the duplicate check reach PostgreSQL in one round trip
        # (storage.lean); the lock is taken whatever the standing, and released with the transaction.
        who = standing_soon(ctx, country)
        _serialize(ctx, kind, country)
        previous = duplicates.previous_soon(ctx, key)
        # A departure's on-duty figure is read after its country's lock, in the same round trip.
        on_duty = (
            totals.on_duty_soon(ctx.session, country.code, cap_key)
            if kind is MovementKind.DEPARTURE
            else None
        )
        require_can_record(ctx, country, who())
        prompt = duplicates.prompt_if_retyped(ctx, previous(), text)
        if prompt is not None:
            return prompt
        if on_duty is not None:
            _check_enough_on_duty(ctx, country, capability, request.count, on_duty())
    duplicates.remember(ctx, key)
    recorded = recording.record_movement_soon(
        ctx.session,
        Entry(
            country=country.code,
            kind=kind,
            count=request.count,
            capability=cap_key,
            location=request.tail.location,
            note=request.tail.note,
            recorded_by=ctx.caller.user_id,
            channel_id=ctx.caller.channel_id,
            command_text=f"{ctx.command} {text}",
            created_at=ctx.now(),
        ),
    )

    def reply() -> Reply:
        entry, status = recorded()
        return recorded_reply(entry, country, ctx, status.total)

    # Rendered once the ledger row, the totals and the COMMIT have gone in one round trip.
    return LateReply(reply)


def _serialize(ctx: CommandContext, kind: MovementKind, country: Country) -> None:
    """Until the transaction ends: a departure against its country's other movements (never below
    zero on duty); an arrival only adds (its totals row is updated atomically), so only against the
    caller's own retyped command and its duplicate check: arrivals for one country run side by side."""
    if kind is MovementKind.DEPARTURE:
        serialize_on(ctx.session, f"country:{country.code}")
    else:
        serialize_on(ctx.session, f"user:{ctx.caller.user_id}")


def _check_enough_on_duty(
    ctx: CommandContext, country: Country, capability: Capability | None, count: int, available: int
) -> None:
    if count <= available:
        return
    where = f"{country.name} ({capability.key})" if capability else country.name
    if capability is None:
        status = totals.deployment_status(ctx.session, country.code).get(country.code)
        by_cap = [
            f"`{key}` ({bucket.on_duty})"
            for key, bucket in sorted(
                (status.by_capability if status else {}).items(), key=lambda kv: kv[0] or ""
            )
            if key is not None and bucket.on_duty > 0
        ]
        if by_cap:
            raise UsageError(
                f"{where} has {plural(available, 'person', 'people')} on duty recorded without a capability, "
                f"so {count} can't leave from there.",
                hint=f"Say which capability is leaving: {', '.join(by_cap)}.",
            )
    raise UsageError(
        f"{where} has only {plural(available, 'person', 'people')} on duty; {count} can't leave.",
        hint="Record the missing arrivals first, or check the number.",
    )


def undo(kind: MovementKind, ctx: CommandContext) -> Reply:
    minutes = int(ctx.config.undo_window.total_seconds() // 60)
    last = ledger.last_entry_by(ctx.session, ctx.caller.user_id, kind)
    if last is None or last.id is None:
        raise UsageError(f"You have no {kind.value} entry to undo.")
    serialize_on(ctx.session, f"country:{last.country}")
    country = country_by_code(last.country)
    summary = _movement_summary(last, country)
    if ledger.reversal_of(ctx.session, last.id) is not None:
        raise UsageError(f"Your last {kind.value} entry ({summary}) was already undone.")
    if ctx.now() - last.created_at > ctx.config.undo_window:
        raise UsageError(
            f"Your last {kind.value} entry ({summary}) is older than {minutes} minutes and can't be undone.",
            hint="Record the opposite movement instead, with a note saying why.",
        )
    if kind is MovementKind.ARRIVAL:
        available = totals.on_duty(ctx.session, last.country, last.capability)
        if available < last.count:
            raise UsageError(
                f"Undoing {summary} would leave {country.name} below zero on duty "
                f"(departures were recorded since).",
                hint="Undo those departures first.",
            )
    reversal = Movement(
        country=last.country,
        kind=kind,
        count=-last.count,
        capability=last.capability,
        location=last.location,
        note=f"undo of entry #{last.id}",
        recorded_by=ctx.caller.user_id,
        channel_id=ctx.caller.channel_id,
        command_text=f"{ctx.command} undo",
        created_at=ctx.now(),
        reverses_id=last.id,
    )
    ctx.session.add(reversal)
    # The entry no longer stands: typing it again is not a duplicate of it.
    duplicates.forget(
        ctx, duplicates.meaning(kind.value, last.country, last.count, last.capability, last.location)
    )
    ctx.session.flush()
    now_total = _country_totals(ctx, country)
    text = f":leftwards_arrow_with_hook: {mention(ctx.caller.user_id)} undid entry #{last.id}: {summary}."
    return Reply(
        text=f"Undone: {summary}. {country.name} now: {_totals_line(now_total)}",
        blocks=[section(text), context(f"{country.name} now: {_totals_line(now_total)}")],
        in_channel=True,
    )


def _movement_summary(movement: Movement | Entry, country: Country) -> str:
    kind = MovementKind(movement.kind)
    parts = [f"{country.name}: {abs(movement.count):,} {VERB[kind]}"]
    if movement.capability:
        parts.append(f"({movement.capability})")
    if movement.location:
        parts.append(f"at {show(movement.location)}")
    return " ".join(parts)


def _country_totals(ctx: CommandContext, country: Country) -> Bucket:
    status = totals.deployment_status(ctx.session, country.code).get(country.code)
    return status.total if status else Bucket()


def _totals_line(bucket: Bucket) -> str:
    pledge = f"of {bucket.pledged:,} pledged ({percent(bucket.fill_rate)}) {progress_bar(bucket.fill_rate)}"
    return (
        f"*{bucket.on_duty:,} on duty* {pledge}"
        if bucket.pledged
        else f"*{bucket.on_duty:,} on duty* (no pledge recorded)"
    )


def recorded_reply(
    movement: Movement | Entry, country: Country, ctx: CommandContext, now_total: Bucket
) -> Reply:
    """The answer to a recorded movement; `now_total`: the country's totals with it."""
    kind = MovementKind(movement.kind)
    by = mention(ctx.caller.user_id)
    headline = f"{EMOJI[kind]} {flag(country)} *{_movement_summary(movement, country)}* — recorded by {by}"
    blocks: list[Block] = [section(headline)]
    if movement.note:
        blocks.append(section(f">{show(movement.note)}"))
    blocks.append(context(f"{country.name} now: {_totals_line(now_total)} · entry #{movement.id}"))
    return Reply(
        text=f"{_movement_summary(movement, country)} (entry #{movement.id}). {country.name} now: {now_total.on_duty:,} on duty.",
        blocks=blocks,
        in_channel=True,
    )


def today_reply(ctx: CommandContext) -> Reply:
    since = local_day_start(ctx.now(), ctx.config.zone)
    movements = ledger.movements_since(ctx.session, since, TODAY_LIMIT)
    total = ledger.count_movements_since(ctx.session, since)
    day = since.strftime("%A %d %B")
    if not movements:
        text = f"No movements recorded today ({day}, {ctx.config.zone.key})."
        return Reply(text=text, blocks=[section(f":calendar: {text}")])
    lines = [_today_line(m, ctx) for m in movements]
    blocks: list[Block] = [header(f"Movements today — {day}"), *text_sections(lines)]
    if total > len(movements):
        blocks.append(context(f"Showing the latest {len(movements)} of {total} movements today."))
    blocks.append(context(f"Times in {ctx.config.zone.key}. `/deployment` shows the totals."))
    return Reply(text=f"{plural(total, 'movement')} today ({day}).", blocks=blocks)


def _today_line(movement: Movement, ctx: CommandContext) -> str:
    country = country_by_code(movement.country)
    kind = MovementKind(movement.kind)
    sign = "+" if (kind is MovementKind.ARRIVAL) == (movement.count > 0) else "−"
    when = format_local_time(movement.created_at, ctx.config.zone, ctx.now())
    what = f"{sign}{abs(movement.count):,} {flag(country)} {country.name}"
    if movement.capability:
        what += f" · {movement.capability}"
    if movement.location:
        what += f" · at {show(movement.location)}"
    undone = f" _(undo of #{movement.reverses_id})_" if movement.reverses_id else ""
    return f"`{when}` {what}{undone} — {mention(movement.recorded_by)} · #{movement.id}"
