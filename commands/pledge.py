"""`/pledge` — what a country committed, per capability. A new pledge replaces the previous one for
that (country, capability); history stays in the ledger."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import col

from commands import duplicates
from commands.blocks import Block, context, header, section, text_sections
from commands.capabilities import Capability
from commands.common import HELP_WORDS, CommandContext, Reply, UsageError, format_local_time, mention
from commands.countries import Country, flag
from commands.parsing import (
    capability_from,
    count_from,
    country_from,
    looks_like_number,
    quote,
    split_country_and_count,
)
from commands.permissions import require_ops
from storage import ledger, totals
from storage.db import serialize_on
from storage.models import Pledge

COMMAND = "/pledge"
RECORDS = True
USAGE = "`/pledge <country> <number> [capability]`"


@dataclass(frozen=True)
class SetPledge:
    country: Country
    headcount: int
    capability: Capability | None


@dataclass(frozen=True)
class ShowPledges:
    country: Country


@dataclass(frozen=True)
class Help:
    pass


Request = SetPledge | ShowPledges | Help


def parse(text: str, ctx: CommandContext) -> Request:
    tokens = text.split()
    if not tokens or (tokens[0].lower() in HELP_WORDS and len(tokens) == 1):
        return Help()
    if not any(looks_like_number(token) for token in tokens):
        return ShowPledges(country_from(" ".join(tokens)))
    country, count_token, rest = split_country_and_count(tokens, USAGE)
    headcount = count_from(count_token, maximum=ctx.config.max_per_entry, allow_zero=True, what="pledge")
    if len(rest) > 1:
        joined = "-".join(rest)
        capability = ctx.config.vocabulary.resolve(joined)
        if capability is None:
            raise UsageError(
                f"Only one capability goes after the number, not {quote(' '.join(rest))}.",
                hint=f"Usage: {USAGE}",
            )
        return SetPledge(country, headcount, capability)
    capability = capability_from(rest[0], ctx.config.vocabulary) if rest else None
    return SetPledge(country, headcount, capability)


def handle(text: str, ctx: CommandContext) -> Reply:
    request = parse(text, ctx)
    if isinstance(request, Help):
        return help_reply(ctx)
    if isinstance(request, ShowPledges):
        return show_reply(request.country, ctx)
    return set_pledge(request, text, ctx)


def help_reply(ctx: CommandContext) -> Reply:
    capabilities = ", ".join(f"`{c.key}`" for c in ctx.config.vocabulary)
    lines = [
        "*/pledge* — record what a country committed.",
        f"• {USAGE} — e.g. `/pledge poland 120`, `/pledge poland 20 dog-team`",
        "  Each capability has its own pledge; a new number replaces the previous one. `0` withdraws it.",
        "  Without a capability the pledge counts as _unspecified_ personnel.",
        "• `/pledge <country>` — that country's current pledges and who recorded them",
        f"Capabilities: {capabilities}.",
    ]
    return Reply(text="\n".join(lines), blocks=[section("\n".join(lines))])


def set_pledge(request: SetPledge, text: str, ctx: CommandContext) -> Reply:
    country = request.country
    cap_key = request.capability.key if request.capability else None
    require_ops(ctx, "record pledges")
    serialize_on(ctx.session, f"country:{country.code}")
    key = duplicates.meaning("pledge", country.code, request.headcount, cap_key)
    prompt = duplicates.check(ctx, key, text)
    if prompt is not None:
        return prompt
    previous = ledger.current_pledge(ctx.session, country.code, cap_key)
    pledge = Pledge(
        country=country.code,
        capability=cap_key,
        headcount=request.headcount,
        recorded_by=ctx.caller.user_id,
        channel_id=ctx.caller.channel_id,
        command_text=f"{COMMAND} {text}",
        created_at=ctx.now(),
    )
    ctx.session.add(pledge)
    duplicates.remember(ctx, key)
    ctx.session.flush()
    status = totals.deployment_status(ctx.session, country.code)[country.code]
    what = f"{country.name} ({cap_key})" if cap_key else f"{country.name} (unspecified capability)"
    change = f"was {previous.headcount:,}" if previous else "new"
    verb = "withdrawn" if request.headcount == 0 else f"set to *{request.headcount:,}*"
    line = f":handshake: {flag(country)} Pledge for *{what}* {verb} ({change}) — recorded by {mention(ctx.caller.user_id)}"
    total = status.total
    return Reply(
        text=f"Pledge for {what}: {request.headcount:,} ({change}). {country.name} pledged in total: {total.pledged:,}.",
        blocks=[
            section(line),
            context(f"{country.name} pledged in total: *{total.pledged:,}* · on duty {total.on_duty:,}"),
        ],
        in_channel=True,
    )


def show_reply(country: Country, ctx: CommandContext) -> Reply:
    latest = ctx.session.execute(
        select(Pledge).where(col(Pledge.country) == country.code).order_by(col(Pledge.id).desc())
    ).scalars()
    seen: set[str | None] = set()
    lines: list[str] = []
    total = 0
    for pledge in latest:
        if pledge.capability in seen:
            continue
        seen.add(pledge.capability)
        if pledge.headcount == 0:
            continue
        total += pledge.headcount
        when = format_local_time(pledge.created_at, ctx.config.zone, ctx.now())
        lines.append(
            f"• *{pledge.capability or 'unspecified'}*: {pledge.headcount:,} — {mention(pledge.recorded_by)}, {when}"
        )
    if not lines:
        text = f"No pledge recorded for {country.name} yet."
        return Reply(text=text, blocks=[section(f"{flag(country)} {text}"), context(f"Record one: {USAGE}")])
    blocks: list[Block] = [
        header(f"Pledges — {country.name}"),
        *text_sections(lines),
        context(f"Total pledged: *{total:,}*"),
    ]
    return Reply(text=f"{country.name} pledged {total:,} in total.", blocks=blocks)
