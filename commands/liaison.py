"""`/liaison` — roles, liaison officers per country, and the channels linked to countries."""

from __future__ import annotations

from sqlalchemy import delete

from commands.blocks import Block, context, header, section, summarised_sections
from commands.common import (
    HELP_WORDS,
    Caller,
    CommandContext,
    Reply,
    UsageError,
    mention,
    plural,
    user_from_mention,
)
from commands.countries import country_by_code, flag
from commands.exports import export
from commands.notices import deliver_current_to
from commands.parsing import country_from, quote
from commands.permissions import require_admin, role_row
from storage import directory
from storage.db import serialize_on
from storage.models import ChannelLink, LiaisonAssignment, Role, UserRole

COMMAND = "/liaison"
RECORDS = False
ROLE_CHOICES = ("ops", "admin", "none")

HELP = "\n".join(
    [
        "*/liaison* — who does what.",
        "• `/liaison role @user ops|admin|none` — grant or remove a role (admins)",
        "• `/liaison assign @user <country>` — make someone a liaison officer for a country (admins)",
        "• `/liaison unassign @user <country>` — remove that (admins)",
        "• `/liaison link <country>` — in a channel: this is that country's liaison channel (admins)",
        "• `/liaison unlink` — in a channel: it is no longer a liaison channel (admins)",
        "• `/liaison who [country]` — who is liaison where, which channels are linked, who is ops",
        "• `/liaison export [country]` — movements, pledges, notices and acknowledgements as CSV files, "
        "sent to your DM with Liaison (ops, admins)",
        "_ops_ raise and lower the alert level and record pledges; a country's liaisons (or ops) record its movements.",
    ]
)


def channels_to_check(text: str, caller: Caller) -> list[str]:
    """The channels Slack is asked about before the command's transaction (bot.dispatch): whether
    Liaison is in the channel `link` is typed in."""
    words = text.split()
    channel = caller.channel_id
    if len(words) > 1 and words[0].lower() == "link" and channel and not channel.startswith("D"):
        return [channel]
    return []


def handle(text: str, ctx: CommandContext) -> Reply:
    words = text.split()
    if not words or words[0].lower() in HELP_WORDS:
        return Reply(text=HELP, blocks=[section(HELP)])
    sub, args = words[0].lower(), words[1:]
    if sub == "role":
        return set_role(args, ctx)
    if sub == "assign":
        return assign(args, ctx)
    if sub == "unassign":
        return unassign(args, ctx)
    if sub == "link":
        return link(args, ctx)
    if sub == "unlink":
        return unlink(args, ctx)
    if sub == "who":
        return who(args, ctx)
    if sub == "export":
        return export(args, ctx)
    raise UsageError(
        f"`/liaison` has no sub-command {quote(sub)}.", hint="Type `/liaison help` for the list."
    )


def _changing_directory(ctx: CommandContext, action: str) -> None:
    """Admins only, one change of the directory at a time: ten identical `/liaison assign` typed at
    once are applied once and the other nine told it is done (SQLite serializes writers already)."""
    require_admin(ctx, action)
    serialize_on(ctx.session, "liaison-directory")


def _user(token: str) -> str:
    user_id = user_from_mention(token)
    if user_id is None:
        raise UsageError(
            f"{quote(token)} is not a Slack mention.",
            hint="Type @ and pick the person from Slack's list, so Liaison gets their user id.",
        )
    return user_id


def set_role(args: list[str], ctx: CommandContext) -> Reply:
    if len(args) != 2 or args[1].lower() not in ROLE_CHOICES:
        raise UsageError("Usage: `/liaison role @user ops|admin|none`.")
    _changing_directory(ctx, "grant roles")
    user_id, choice = _user(args[0]), args[1].lower()
    ctx.session.execute(delete(UserRole).where(UserRole.user_id == user_id))  # type: ignore[arg-type]
    if choice != "none":
        ctx.session.add(role_row(user_id, Role(choice), ctx.caller.user_id, ctx))
    note = ""
    if choice == "none" and user_id in ctx.config.admins:
        note = " They stay an admin through LIAISON_ADMINS."
    text = (
        f":bust_in_silhouette: {mention(user_id)} is now *{choice}*"
        if choice != "none"
        else f":bust_in_silhouette: {mention(user_id)} has no role any more."
    )
    return Reply(
        text=text + note, blocks=[section(text + note), context(f"Changed by {mention(ctx.caller.user_id)}")]
    )


def assign(args: list[str], ctx: CommandContext) -> Reply:
    if len(args) < 2:
        raise UsageError("Usage: `/liaison assign @user <country>`.")
    _changing_directory(ctx, "assign liaison officers")
    user_id, country = _user(args[0]), country_from(" ".join(args[1:]))
    if country.code in directory.countries_of(ctx.session, user_id):
        raise UsageError(f"{mention(user_id)} is already a liaison for {country.name}.")
    ctx.session.add(
        LiaisonAssignment(
            user_id=user_id, country=country.code, assigned_by=ctx.caller.user_id, assigned_at=ctx.now()
        )
    )
    text = f"{flag(country)} {mention(user_id)} is now a liaison officer for *{country.name}*."
    return Reply(text=text, blocks=[section(text)], in_channel=True)


def unassign(args: list[str], ctx: CommandContext) -> Reply:
    if len(args) < 2:
        raise UsageError("Usage: `/liaison unassign @user <country>`.")
    _changing_directory(ctx, "remove liaison officers")
    user_id, country = _user(args[0]), country_from(" ".join(args[1:]))
    if not directory.unassign(ctx.session, user_id, country.code):
        raise UsageError(f"{mention(user_id)} is not a liaison for {country.name}.")
    text = f"{mention(user_id)} is no longer a liaison officer for {country.name}."
    return Reply(text=text, blocks=[section(text)], in_channel=True)


def link(args: list[str], ctx: CommandContext) -> Reply:
    if not args:
        raise UsageError("Usage: `/liaison link <country>` — typed in the country's liaison channel.")
    country = country_from(" ".join(args))
    channel = ctx.caller.channel_id
    if not channel:
        raise UsageError("Run `/liaison link` inside the channel to link.")
    if channel.startswith("D"):
        raise UsageError(
            "A direct message cannot be a liaison channel.",
            hint=f"Type `/liaison link {quote(country.name)}` in {country.name}'s liaison channel.",
        )
    # Asked of Slack before the transaction began (channels_to_check): no lock is held while it answers.
    member = ctx.channels.bot_is_member(channel) if ctx.channels is not None else None
    _changing_directory(ctx, "link channels")
    if member is False:
        raise UsageError(
            "Liaison is not a member of this channel, so its notices could not be posted here. "
            "Nothing was linked.",
            hint=f"Type `/invite @liaison` in this channel, then `/liaison link {country.name.lower()}` again.",
        )
    existing = directory.link_of(ctx.session, channel)
    if existing is not None and existing.country == country.code:
        raise UsageError(f"This channel is already {country.name}'s liaison channel.")
    previous = f" (it was {country_by_code(existing.country).name}'s)" if existing else ""
    if existing is not None:
        ctx.session.delete(existing)
        ctx.session.flush()
    ctx.session.add(
        ChannelLink(
            channel_id=channel, country=country.code, linked_by=ctx.caller.user_id, linked_at=ctx.now()
        )
    )
    ctx.session.flush()
    sent = deliver_current_to(ctx.session, channel, country.code, ctx.config, ctx.now())
    text = (
        f"{flag(country)} This channel is now *{country.name}*'s liaison channel{previous}: "
        "alert-level notices for the country arrive here." + (" The current notice follows." if sent else "")
    )
    note = (
        "Liaison is a member of this channel."
        if member
        else "Slack could not be asked whether Liaison is a member of this channel: "
        "if it is not, type `/invite @liaison` here so that notices arrive."
    )
    return Reply(text=text, blocks=[section(text), context(note)], in_channel=True)


def unlink(args: list[str], ctx: CommandContext) -> Reply:
    if args:
        raise UsageError("`/liaison unlink` takes nothing after it; type it in the channel to unlink.")
    _changing_directory(ctx, "unlink channels")
    existing = directory.link_of(ctx.session, ctx.caller.channel_id)
    if existing is None:
        raise UsageError("This channel is not linked to any country.")
    country = country_by_code(existing.country)
    ctx.session.delete(existing)
    text = f"This channel is no longer {country.name}'s liaison channel."
    return Reply(text=text, blocks=[section(text)], in_channel=True)


def who(args: list[str], ctx: CommandContext) -> Reply:
    country = country_from(" ".join(args)) if args else None
    code = country.code if country else None
    liaisons: dict[str, list[str]] = {}
    for assignment in directory.assignments(ctx.session, code):
        liaisons.setdefault(assignment.country, []).append(assignment.user_id)
    channels: dict[str, list[str]] = {}
    for channel_link in directory.links(ctx.session, code):
        channels.setdefault(channel_link.country, []).append(channel_link.channel_id)
    codes = sorted(set(liaisons) | set(channels), key=lambda c: country_by_code(c).name)
    if country is not None and country.code not in codes:
        codes = [country.code]
    lines = []
    for c in codes:
        name = country_by_code(c)
        people = ", ".join(mention(u) for u in liaisons.get(c, [])) or "_no liaison assigned_"
        rooms = ", ".join(f"<#{ch}>" for ch in channels.get(c, [])) or "_no channel linked_"
        lines.append(f"{flag(name)} *{name.name}* — {people} · {rooms}")
    blocks: list[Block] = [header(f"Liaison — {country.name}" if country else "Liaison — who is where")]
    if lines:
        blocks += summarised_sections(lines, "`/liaison who <country>` shows one country")
    else:
        blocks.append(section("No liaison assigned and no channel linked yet."))
    if country is None:
        granted = directory.users_with_role(ctx.session)
        ops = [r.user_id for r in granted if r.role == Role.OPS]
        admins = sorted(set(ctx.config.admins) | {r.user_id for r in granted if r.role == Role.ADMIN})
        blocks.append(context(f"Ops: {_people(ops)} · Admins: {_people(admins)}"))
    assigned = sum(1 for c in codes if liaisons.get(c))
    text = (
        f"Liaison officers for {plural(assigned, 'country', 'countries')}, "
        f"{plural(sum(len(v) for v in channels.values()), 'linked channel')}."
        if lines
        else "No liaison assigned yet."
    )
    return Reply(text=text, blocks=blocks)


MAX_PEOPLE_SHOWN = 20


def _people(user_ids: list[str]) -> str:
    if not user_ids:
        return "none"
    shown = ", ".join(mention(u) for u in user_ids[:MAX_PEOPLE_SHOWN])
    more = len(user_ids) - MAX_PEOPLE_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")
