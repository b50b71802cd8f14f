"""`/digest` — daily digests: subscribe a channel (or the DM with the bot), list, preview, unsubscribe."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta

from sqlmodel import Session

from commands.blocks import Block, context, fit_blocks, header, section, text_sections
from commands.common import CommandContext, ReadReply, Reply, UsageError, mention
from commands.countries import country_by_code, flag
from commands.digest_content import gather, render
from commands.local_times import BadTime, first_missing_day, format_time_of_day, parse_time_of_day
from commands.parsing import country_from, quote
from commands.permissions import is_ops
from storage import digests, directory
from storage.models import DigestSubscription

COMMAND = "/digest"
RECORDS = False
DEFAULT_TIME = time(7, 0)
PREVIEW_COVERS = timedelta(hours=24)

HELP = "\n".join(
    [
        "*/digest* — a morning digest: movements since the last one, gaps against pledges, silent "
        "countries, the alert level and who has not acknowledged it, with a chart.",
        "• `/digest subscribe [HH:MM] [country <country>|overall]` — every day at that time "
        "(default 07:00); in the DM with Liaison for a personal digest",
        "• `/digest unsubscribe` — stop this channel's digest",
        "• `/digest list` — this channel's digest (ops and admins: every subscription)",
        "• `/digest preview` — the digest as it would be sent now, only to you",
        "A channel linked to a country gets that country's digest by default; other channels the overall one.",
    ]
)


@dataclass(frozen=True)
class Subscribe:
    at: time
    scope: str | None  # a country code
    scope_given: bool  # False: the channel's default view


@dataclass(frozen=True)
class Simple:
    action: str  # unsubscribe | list | preview | help


Request = Subscribe | Simple


def parse(text: str) -> Request:
    words = text.split()
    if not words or words[0].lower() in ("help", "?", "-h", "--help"):
        return Simple("help")
    sub, args = words[0].lower(), words[1:]
    if sub in ("unsubscribe", "stop", "list", "preview"):
        if args:
            raise UsageError(f"`/digest {sub}` takes nothing after it.")
        return Simple("unsubscribe" if sub == "stop" else sub)
    if sub != "subscribe":
        raise UsageError(
            f"`/digest` has no sub-command {quote(sub)}.", hint="Type `/digest help` for the list."
        )
    at = DEFAULT_TIME
    if args and args[0][:1].isdigit():
        try:
            at = parse_time_of_day(args[0])
        except BadTime as error:
            raise UsageError(
                str(error), hint="Usage: `/digest subscribe [HH:MM] [country <country>|overall]`"
            ) from None
        args = args[1:]
    if not args:
        return Subscribe(at, None, scope_given=False)
    if len(args) == 1 and args[0].lower() in ("overall", "all"):
        return Subscribe(at, None, scope_given=True)
    if args[0].lower() == "country" and len(args) > 1:
        return Subscribe(at, country_from(" ".join(args[1:])).code, scope_given=True)
    raise UsageError(
        f"{quote(' '.join(args))} is not understood after the time.",
        hint="Usage: `/digest subscribe [HH:MM] [country <country>|overall]`, e.g. `/digest subscribe 07:30 country poland`",
    )


def handle(text: str, ctx: CommandContext) -> Reply | ReadReply:
    request = parse(text)
    if isinstance(request, Subscribe):
        return subscribe(request, ctx)
    if request.action == "help":
        return Reply(text=HELP, blocks=[section(HELP)])
    if request.action == "unsubscribe":
        return unsubscribe(ctx)
    if request.action == "list":
        return list_subscriptions(ctx)
    return preview(ctx)


def _is_dm(channel_id: str) -> bool:
    return channel_id.startswith("D")


def _may_manage(ctx: CommandContext) -> None:
    """Ops and admins manage any channel's digest; a liaison their country's channel; anyone their DM."""
    channel = ctx.caller.channel_id
    if not channel:
        raise UsageError("Type `/digest` in the channel that should receive the digest.")
    if _is_dm(channel) or is_ops(ctx):
        return
    link = directory.link_of(ctx.session, channel)
    if link is not None and link.country in directory.countries_of(ctx.session, ctx.caller.user_id):
        return
    raise UsageError(
        "Only ops, admins or this channel's country liaisons can change its digest.",
        hint="For a personal digest, type `/digest subscribe` in your DM with Liaison.",
    )


def _scope_name(scope: str | None) -> str:
    return "all countries" if scope is None else country_by_code(scope).name


def subscribe(request: Subscribe, ctx: CommandContext) -> Reply:
    _may_manage(ctx)
    zone = ctx.config.zone
    missing = first_missing_day(request.at, zone, ctx.now().astimezone(zone).date())
    if missing is not None:
        raise UsageError(
            f"{format_time_of_day(request.at)} does not exist in {zone.key} on {missing:%-d %B %Y} "
            "(the clocks go forward), so the digest could not be sent then.",
            hint="Choose a time outside that hour, e.g. `07:00`.",
        )
    channel = ctx.caller.channel_id
    scope = request.scope
    if not request.scope_given and not _is_dm(channel):
        link = directory.link_of(ctx.session, channel)
        scope = link.country if link is not None else None
    at = format_time_of_day(request.at)
    now = ctx.now()
    existing = digests.subscription_of(ctx.session, channel)
    if existing is None:
        ctx.session.add(
            DigestSubscription(
                channel_id=channel,
                country=scope,
                local_time=at,
                active=True,
                active_since=now,
                created_by=ctx.caller.user_id,
                created_at=now,
            )
        )
        verb = "will get"
    else:
        if existing.active and existing.local_time == at and existing.country == scope:
            raise UsageError(f"This channel already gets the digest for {_scope_name(scope)} at {at}.")
        verb = "will now get" if existing.active else "will get again"
        existing.country, existing.local_time, existing.active = scope, at, True
        existing.active_since, existing.created_by = now, ctx.caller.user_id
        ctx.session.add(existing)
    where = "You" if _is_dm(channel) else "This channel"
    text = (
        f":newspaper: {where} {verb} the morning digest for *{_scope_name(scope)}* every day at *{at}* "
        f"({zone.key})."
    )
    return Reply(
        text=text,
        blocks=[
            section(text),
            context(
                f"Set by {mention(ctx.caller.user_id)} · `/digest preview` shows it now · `/digest unsubscribe` stops it"
            ),
        ],
        in_channel=not _is_dm(channel),
    )


def unsubscribe(ctx: CommandContext) -> Reply:
    _may_manage(ctx)
    existing = digests.subscription_of(ctx.session, ctx.caller.channel_id)
    if existing is None or not existing.active:
        raise UsageError(
            "This channel has no digest to stop.", hint="`/digest list` shows the subscriptions."
        )
    existing.active = False
    ctx.session.add(existing)
    text = f":no_bell: No more daily digest here (it was for {_scope_name(existing.country)} at {existing.local_time})."
    return Reply(
        text=text,
        blocks=[section(text), context(f"Stopped by {mention(ctx.caller.user_id)}")],
        in_channel=not _is_dm(ctx.caller.channel_id),
    )


def _describe(subscription: DigestSubscription) -> str:
    where = "a DM" if _is_dm(subscription.channel_id) else f"<#{subscription.channel_id}>"
    scope = (
        f"{flag(country_by_code(subscription.country))} {country_by_code(subscription.country).name}"
        if subscription.country
        else ":globe_with_meridians: all countries"
    )
    line = f"*{subscription.local_time}* · {where} · {scope} · by {mention(subscription.created_by)}"
    if subscription.channel_id.startswith("D"):
        line = f"*{subscription.local_time}* · DM of {mention(subscription.created_by)} · {scope}"
    return line


def list_subscriptions(ctx: CommandContext) -> Reply:
    zone = ctx.config.zone.key
    if not is_ops(ctx):
        mine = digests.subscription_of(ctx.session, ctx.caller.channel_id)
        if mine is None or not mine.active:
            text = "This channel gets no daily digest. `/digest subscribe` starts one."
            return Reply(text=text, blocks=[section(text)])
        text = f"This channel's digest: {_describe(mine)} ({zone})."
        return Reply(text=text, blocks=[section(text), *_last_runs(ctx, mine)])
    subscriptions = list(digests.active_subscriptions(ctx.session))
    if not subscriptions:
        text = "No channel gets the daily digest yet. `/digest subscribe` in a channel starts one."
        return Reply(text=text, blocks=[section(text)])
    lines = [_describe(s) for s in subscriptions]
    blocks: list[Block] = [header(f"Daily digests — {len(subscriptions)}"), *text_sections(lines)]
    blocks.append(context(f"Times in {zone}."))
    return Reply(text="\n".join(lines), blocks=blocks)


def _last_runs(ctx: CommandContext, subscription: DigestSubscription) -> list[Block]:
    assert subscription.id is not None
    runs = list(digests.runs_of(ctx.session, subscription.id))[-3:]
    if not runs:
        return []
    lines = [f"{run.local_date}: {run.status}" + (f" — {run.reason}" if run.reason else "") for run in runs]
    return [context("Recent: " + " · ".join(lines))]


def preview(ctx: CommandContext) -> ReadReply:
    """Built after the command's transaction, on a snapshot of its own: a preview reads every
    movement of its window (hundreds of milliseconds at a million rows), and on SQLite a command's
    transaction holds the writer's turn for everyone."""
    caller, config, now = ctx.caller, ctx.config, ctx.now()

    def render_preview(session: Session) -> Reply:
        existing = digests.subscription_of(session, caller.channel_id)
        window = digests.Window(now - PREVIEW_COVERS, now)
        if existing is not None and existing.active:
            from_previous = digests.last_sent_run(session, existing.id) if existing.id is not None else None
            if from_previous is not None:
                window = digests.since_run(session, from_previous, now)
            scope = existing.country
        else:
            link = None if _is_dm(caller.channel_id) else directory.link_of(session, caller.channel_id)
            scope = link.country if link is not None else None
        data = gather(session, config, window=window, scope=scope)
        reply = render(data, config.zone, title="Digest preview")
        reply.blocks.insert(
            1, context(":eyes: Only you see this preview; the scheduled digest also carries a chart.")
        )
        return Reply(text=reply.text, blocks=fit_blocks(reply.blocks))

    return ReadReply(render_preview)
