"""`/incident` — open, own, escalate and resolve incidents in channels.

Each incident has a card in the channel where it was opened, edited in place after every change,
and every change is also a reply in the card's thread (the thread is the timeline). Escalation
posts to the escalation channel (with the on-call user group for sev1/sev2) and to the liaison
channels of the countries involved. Timers re-announce sev1/sev2 incidents left without an owner
or without an update (see `fire_timers`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from commands.blocks import Block, context, header, section, text_sections
from commands.common import (
    CommandConfig,
    CommandContext,
    PermissionDenied,
    Reply,
    UsageError,
    mention,
    plural,
    user_from_mention,
)
from commands.countries import Country, country_by_code
from commands.incident_card import (
    ACTION_ESCALATE,
    ACTION_OWN,
    ACTION_RESOLVE,
    BUTTON_LABELS,
    SEVERITIES,
    card,
    card_reference,
    country_codes,
    country_names,
    list_line,
    ref,
    timeline_blocks,
)
from commands.incident_text import plain_text
from commands.parsing import country_from, quote
from commands.permissions import is_ops, ops_and_admins
from commands.slack_text import show
from storage import directory, incidents, outbox
from storage.incidents import Timer
from storage.models import Incident, IncidentEvent, IncidentStatus

COMMAND = "/incident"
RECORDS = False
MAX_TITLE = 150  # a header's limit in Slack: refused beyond, never cut
MAX_DESCRIPTION = 2000
MIN_REASON = 3
MAX_REASON = 900
MAX_COUNTRIES = 10
COUNTRY_FLAGS = ("--country", "--countries", "—country", "—countries")

HELP = "\n".join(
    [
        "*/incident* — incidents, their owner, escalation and timeline.",
        "• `/incident` — a form to open one",
        "• `/incident open [sev1|sev2|sev3|sev4] <title> [--country <country>]…` — default sev3; "
        "the card is posted here, with *Take ownership*, *Escalate* and *Resolve*",
        "• `/incident escalate INC-42 [sev1] <why>` — raise the severity (one step by default) and alert "
        "the escalation channel, the on-call group and the countries' liaison channels",
        "• `/incident severity INC-42 <sevN> <reason>` — set any severity",
        "• `/incident assign INC-42 @user` · `/incident update INC-42 <text>` · "
        "`/incident resolve INC-42 <summary>` · `/incident reopen INC-42 <why>`",
        "• `/incident list [open|mine|sev1|sev2|sev3|sev4|all]` · `/incident show INC-42`",
        "_Anyone may open an incident; its owner, ops and admins update, escalate and resolve it; "
        "the liaisons of the countries involved may post updates._",
    ]
)


# -- parsing -------------------------------------------------------------------------------------

_SEVERITY = re.compile(r"^sev-?(\d+)$", re.IGNORECASE)
_SEVERITY_LIKE = re.compile(r"^(sev|severity)\S*$", re.IGNORECASE)
_INCIDENT_ID = re.compile(r"^INC-(\d{1,9})$", re.IGNORECASE)


def severity_from(token: str) -> int | None:
    """`sev1`…`sev4` → 1…4; None if the token is not a severity at all; an error if it is a bad one."""
    match = _SEVERITY.match(token)
    if match is None and not _SEVERITY_LIKE.match(token):
        return None
    if match is None or int(match.group(1)) not in SEVERITIES:
        raise UsageError(
            f"There is no severity {quote(token)}.",
            hint="Severities: `sev1` (critical), `sev2` (major), `sev3` (moderate), `sev4` (minor).",
        )
    return int(match.group(1))


def incident_id_from(token: str | None) -> int:
    if not token:
        raise UsageError("Which incident? Give its id, like `INC-42`.")
    match = _INCIDENT_ID.match(token)
    if match is None:
        if token.lstrip("#").isdigit():
            raise UsageError(
                f"Write incident ids as `INC-{token.lstrip('#')}`, not {quote(token)}.",
                hint="`/incident list` shows the open ones.",
            )
        raise UsageError(f"{quote(token)} is not an incident id.", hint="Ids look like `INC-42`.")
    return int(match.group(1))


def title_from(text: str) -> str:
    """`text` as typed (decoded from Slack's encoding where the command entered, mentions kept)."""
    title = " ".join(text.split())
    if not title:
        raise UsageError(
            "The incident needs a title.",
            hint="e.g. `/incident open sev2 Suspicious package at the Trocadéro fan zone --country france`",
        )
    if len(title) > MAX_TITLE:
        raise UsageError(
            f"The title is too long ({len(title)} characters; at most {MAX_TITLE}).",
            hint="Keep the title short; add details with `/incident update` once it is open.",
        )
    return title


def reason_from(raw: str, what: str, example: str) -> str:
    text = raw.strip()
    if len(text) < MIN_REASON:
        raise UsageError(f"{what} is required (at least {MIN_REASON} characters).", hint=f"e.g. `{example}`")
    if len(text) > MAX_REASON:
        raise UsageError(f"{what} is too long ({len(text)} characters; at most {MAX_REASON}).")
    return text


@dataclass(frozen=True)
class OpenRequest:
    severity: int
    title: str
    countries: tuple[Country, ...] = ()
    description: str | None = None


@dataclass(frozen=True)
class Source:
    """The message an incident was opened from (message shortcut)."""

    channel: str
    ts: str
    permalink: str | None = None


def parse_open(text: str) -> OpenRequest:
    words = text.split()
    severity = 3
    if words:
        given = severity_from(words[0])
        if given is not None:
            severity, words = given, words[1:]
    title_words: list[str] = []
    groups: list[list[str]] = []
    for word in words:
        lowered = word.lower()
        if lowered in COUNTRY_FLAGS:
            groups.append([])
        elif lowered.startswith(("--", "—")) and len(lowered) > 2 and not groups:
            raise UsageError(
                f"Unknown option {quote(word)}.", hint="The only option is `--country <country>`."
            )
        elif groups:
            groups[-1].append(word)
        else:
            title_words.append(word)
    countries: list[Country] = []
    for group in groups:
        names = [name.strip() for name in " ".join(group).split(",") if name.strip()]
        if not names:
            raise UsageError("Name a country after `--country`.", hint="e.g. `--country poland`")
        for name in names:
            country = country_from(name)
            if country not in countries:
                countries.append(country)
    if len(countries) > MAX_COUNTRIES:
        raise UsageError(f"At most {MAX_COUNTRIES} countries per incident.")
    return OpenRequest(severity=severity, title=title_from(" ".join(title_words)), countries=tuple(countries))


# -- the command -----------------------------------------------------------------------------------


def handle(text: str, ctx: CommandContext, *, card_link: str | None = None) -> Reply:
    """`card_link`: the card's permalink, looked up by the caller before the transaction."""
    words = text.split()
    if not words or words[0].lower() in ("help", "?", "-h", "--help"):
        return Reply(text=HELP, blocks=[section(HELP)])
    sub, rest = words[0].lower(), words[1:]
    if sub == "open":
        return open_reply(open_incident(ctx, parse_open(" ".join(rest))))
    if sub == "list":
        return list_reply(ctx, rest)
    if sub == "show":
        if len(rest) > 1:
            raise UsageError("`/incident show` takes one id, like `INC-42`.")
        return show_reply(ctx, incident_id_from(rest[0] if rest else None))
    if sub not in _CHANGES:
        raise UsageError(
            f"`/incident` has no sub-command {quote(sub)}.", hint="Type `/incident help` for the list."
        )
    incident_id = incident_id_from(rest[0] if rest else None)
    return _CHANGES[sub](ctx, incident_id, rest[1:], card_link)


def escalation_target(text: str) -> int | None:
    """The incident an escalation is about, if the text names one (to look up its card's link first)."""
    words = text.split()
    if len(words) >= 2 and words[0].lower() == "escalate":
        match = _INCIDENT_ID.match(words[1])
        return int(match.group(1)) if match else None
    return None


def open_reply(incident: Incident) -> Reply:
    text = (
        f":rotating_light: *{ref(incident)}* is open (sev{incident.severity}). "
        f"Its card is posted in <#{incident.channel_id}>; changes appear in the card's thread."
    )
    return Reply(text=text, blocks=[section(text)])


# -- reading ---------------------------------------------------------------------------------------


def list_reply(ctx: CommandContext, args: list[str]) -> Reply:
    if len(args) > 1:
        raise UsageError("Usage: `/incident list [open|mine|sev1|sev2|sev3|sev4|all]`.")
    which = args[0].lower() if args else "open"
    owner = severity = None
    include_resolved = False
    if which == "mine":
        owner = ctx.caller.user_id
    elif which == "all":
        include_resolved = True
    elif which != "open":
        severity = severity_from(which)
        if severity is None:
            raise UsageError(
                f"`/incident list` cannot show {quote(which)}.",
                hint="Usage: `/incident list [open|mine|sev1|sev2|sev3|sev4|all]`.",
            )
    rows, total = incidents.listing(
        ctx.session, owner=owner, severity=severity, include_resolved=include_resolved
    )
    title = {
        "open": "Open incidents",
        "mine": "Open incidents you own",
        "all": "All incidents",
    }.get(which, f"Open sev{severity} incidents")
    if not rows:
        text = f"{title}: none."
        return Reply(text=text, blocks=[section(text)])
    now = ctx.now()
    lines = [list_line(incident, ctx.config.zone, now) for incident in rows]
    blocks: list[Block] = [header(f"{title} ({total})"), *text_sections(lines)]
    if total > len(rows):
        blocks.append(context(f":scissors: {plural(total - len(rows), 'more')} not shown."))
    blocks.append(context("Most severe first, then oldest · `/incident show INC-n` for one incident"))
    return Reply(text=f"{title}: {total}\n" + "\n".join(lines), blocks=blocks)


def show_reply(ctx: CommandContext, incident_id: int) -> Reply:
    incident = _existing(ctx.session, incident_id)
    events = incidents.timeline(ctx.session, incident_id)
    now = ctx.now()
    text, blocks = card(incident, ctx.config.zone, now, resolution=_resolution(events))
    timeline = timeline_blocks(events, ctx.config.zone, now)
    # The card's blocks first, then as much of the timeline as one message holds (latest kept).
    room = 49 - len(blocks) - 1
    if len(timeline) > room:
        timeline = timeline[-room:]
        blocks.append(context(":scissors: Earlier timeline entries are in the card's thread."))
    blocks += [header("Timeline"), *timeline]
    return Reply(text=text, blocks=blocks)


def _existing(session: Session, incident_id: int) -> Incident:
    incident = incidents.get(session, incident_id)
    if incident is None:
        raise UsageError(f"There is no incident INC-{incident_id}.", hint="`/incident list all` shows them.")
    return incident


def _locked(ctx: CommandContext, incident_id: int) -> Incident:
    incident = incidents.lock(ctx.session, incident_id)
    if incident is None:
        raise UsageError(f"There is no incident INC-{incident_id}.", hint="`/incident list all` shows them.")
    return incident


def _resolution(events: Sequence[IncidentEvent]) -> IncidentEvent | None:
    """The latest resolution in a timeline (shown on a resolved card)."""
    return next((event for event in reversed(events) if event.kind == "resolved"), None)


# -- who may do what ---------------------------------------------------------------------------------


def _is_owner(ctx: CommandContext, incident: Incident) -> bool:
    return incident.owner is not None and incident.owner == ctx.caller.user_id


def _involved_liaison(ctx: CommandContext, incident: Incident) -> bool:
    mine = set(directory.countries_of(ctx.session, ctx.caller.user_id))
    return bool(mine & set(country_codes(incident)))


def require_manage(ctx: CommandContext, incident: Incident, action: str) -> None:
    """The owner, ops and admins manage an incident (escalate, resolve, assign, reopen, severity)."""
    if _is_owner(ctx, incident) or is_ops(ctx):
        return
    owner = f"its owner ({mention(incident.owner)})" if incident.owner else "its owner"
    raise PermissionDenied(
        f"Only {owner}, ops or an admin can {action} {ref(incident)}.",
        hint=f"Ops and admins: {ops_and_admins(ctx)}.",
    )


def require_update(ctx: CommandContext, incident: Incident) -> None:
    """Updates: as `require_manage`, plus the liaisons of the countries involved."""
    if _is_owner(ctx, incident) or is_ops(ctx) or _involved_liaison(ctx, incident):
        return
    countries = country_names(incident, flags=False)
    liaisons = f", the liaisons of {countries}" if countries else ""
    owner = f"its owner ({mention(incident.owner)})" if incident.owner else "its owner"
    raise PermissionDenied(
        f"Only {owner}{liaisons}, ops or an admin can post updates to {ref(incident)}.",
        hint=f"Ops and admins: {ops_and_admins(ctx)}.",
    )


def require_take(ctx: CommandContext, incident: Incident) -> None:
    """Taking ownership: when nobody owns it, whoever opened it, the countries' liaisons, ops and
    admins; taking over from an owner: ops and admins."""
    if is_ops(ctx):
        return
    if incident.owner is None and (
        incident.opened_by == ctx.caller.user_id or _involved_liaison(ctx, incident)
    ):
        return
    if incident.owner is not None:
        raise PermissionDenied(
            f"{ref(incident)} is owned by {mention(incident.owner)}; only ops or an admin can take it over.",
            hint=f"Ops and admins: {ops_and_admins(ctx)}.",
        )
    raise PermissionDenied(
        f"Only whoever opened {ref(incident)}, the liaisons of the countries involved, ops or an admin "
        "can take ownership of it.",
        hint=f"Ops and admins: {ops_and_admins(ctx)}.",
    )


def _not_resolved(incident: Incident, doing: str) -> None:
    if incident.status == IncidentStatus.RESOLVED:
        raise UsageError(
            f"{ref(incident)} is resolved, so it cannot be {doing}.",
            hint=f"Reopen it first: `/incident reopen {ref(incident)} <why>`.",
        )


# -- changes -----------------------------------------------------------------------------------------


def open_incident(
    ctx: CommandContext, request: OpenRequest, *, channel: str | None = None, source: Source | None = None
) -> Incident:
    """Create the incident and post its card (and, for sev1/sev2, announce it)."""
    now = ctx.now()
    channel = channel or ctx.caller.channel_id
    if not channel:
        raise UsageError("Open incidents in a channel, where the card can be posted.")
    incident = Incident(
        title=request.title,
        description=request.description,
        severity=request.severity,
        status=IncidentStatus.OPEN,
        channel_id=channel,
        countries=",".join(c.code for c in request.countries),
        opened_by=ctx.caller.user_id,
        opened_at=now,
        updated_at=now,
        source_channel=source.channel if source else None,
        source_ts=source.ts if source else None,
        source_permalink=source.permalink if source else None,
    )
    _reset_timers(incident, ctx.config, now)
    ctx.session.add(incident)
    ctx.session.flush()
    text, blocks = card(incident, ctx.config.zone, now)
    message = outbox.post_message(ctx.session, channel, text=text, blocks=blocks, now=now)
    incident.card_message_id = message.id
    ctx.session.add(incident)
    opened = (
        f":rotating_light: {mention(ctx.caller.user_id)} opened *{ref(incident)}* "
        f"(sev{incident.severity}): {show(incident.title)}"
    )
    incidents.add_event(ctx.session, incident, kind="opened", actor=ctx.caller.user_id, text=opened, now=now)
    if incident.severity <= 2:
        _announce(ctx.session, incident, ctx.config, now, opened, link=None)
    return incident


def take_ownership(ctx: CommandContext, incident: Incident) -> Reply:
    _not_resolved(incident, "taken")
    if _is_owner(ctx, incident):
        raise UsageError(f"You already own {ref(incident)}.")
    require_take(ctx, incident)
    previous = incident.owner
    incident.owner = ctx.caller.user_id
    incident.status = IncidentStatus.OWNED
    took = "took over" if previous else "took ownership of"
    from_whom = f" from {mention(previous)}" if previous else ""
    text = f":raising_hand: {mention(ctx.caller.user_id)} {took} *{ref(incident)}*{from_whom}."
    return _changed(ctx, incident, "owned", text)


def _assign(ctx: CommandContext, incident_id: int, args: list[str], _link: str | None) -> Reply:
    if len(args) != 1:
        raise UsageError(f"Usage: `/incident assign INC-{incident_id} @user` — one person.")
    token = args[0]
    user_id = user_from_mention(token)
    if user_id is None:
        special = re.match(r"^<!(channel|here|everyone|subteam\^[A-Z0-9]+)(?:\|[^>]*)?>$", token)
        if special:
            raise UsageError(
                f"`@{special.group(1).split('^')[0]}` is not a person: assign the incident to one user.",
                hint="Type @ and pick the person from Slack's list.",
            )
        raise UsageError(
            f"{quote(plain_text(token))} is not a Slack user.",
            hint="Type @ and pick the person from Slack's list, so Liaison gets their user id.",
        )
    incident = _locked(ctx, incident_id)
    require_manage(ctx, incident, "assign")
    _not_resolved(incident, "assigned")
    if incident.owner == user_id:
        raise UsageError(f"{mention(user_id)} already owns {ref(incident)}.")
    incident.owner = user_id
    incident.status = IncidentStatus.OWNED
    text = f":bust_in_silhouette: {mention(ctx.caller.user_id)} assigned *{ref(incident)}* to {mention(user_id)}."
    return _changed(ctx, incident, "assigned", text)


def _escalate_command(ctx: CommandContext, incident_id: int, args: list[str], link: str | None) -> Reply:
    target = severity_from(args[0]) if args else None
    words = args[1:] if target is not None else args
    why = reason_from(
        " ".join(words), "A reason for the escalation", f"/incident escalate INC-{incident_id} sev1 <why>"
    )
    incident = _locked(ctx, incident_id)
    return escalate(ctx, incident, target, why, link)


def escalate(
    ctx: CommandContext, incident: Incident, target: int | None, why: str, link: str | None
) -> Reply:
    require_manage(ctx, incident, "escalate")
    _not_resolved(incident, "escalated")
    current = incident.severity
    new = target if target is not None else max(1, current - 1)
    if new > current:
        raise UsageError(
            f"Escalation never lowers the severity ({ref(incident)} is sev{current}).",
            hint=f"To set any level with a reason: `/incident severity {ref(incident)} sev{new} <reason>`.",
        )
    if new == current and current != 1:
        raise UsageError(
            f"{ref(incident)} is already sev{current}.", hint=f"Escalate to sev{current - 1} or higher."
        )
    incident.severity = new
    change = f"from sev{current} to sev{new}" if new != current else "again (sev1)"
    text = (
        f":arrow_double_up: {mention(ctx.caller.user_id)} escalated *{ref(incident)}* {change}: {show(why)}"
    )
    reply = _changed(ctx, incident, "escalated", text)
    _announce(ctx.session, incident, ctx.config, ctx.now(), text, link=link)
    return reply


def _severity(ctx: CommandContext, incident_id: int, args: list[str], _link: str | None) -> Reply:
    level = severity_from(args[0]) if args else None
    if level is None:
        raise UsageError(f"Usage: `/incident severity INC-{incident_id} <sev1|sev2|sev3|sev4> <reason>`.")
    reason = reason_from(
        " ".join(args[1:]),
        "A reason for the new severity",
        f"/incident severity INC-{incident_id} sev{level} <reason>",
    )
    incident = _locked(ctx, incident_id)
    require_manage(ctx, incident, "change the severity of")
    _not_resolved(incident, "changed")
    if incident.severity == level:
        raise UsageError(f"{ref(incident)} is already sev{level}.")
    previous = incident.severity
    incident.severity = level
    arrow = ":arrow_up:" if level < previous else ":arrow_down:"
    text = (
        f"{arrow} {mention(ctx.caller.user_id)} changed *{ref(incident)}* from sev{previous} "
        f"to sev{level}: {show(reason)}"
    )
    return _changed(ctx, incident, "severity", text)


def _update(ctx: CommandContext, incident_id: int, args: list[str], _link: str | None) -> Reply:
    note = reason_from(" ".join(args), "The update's text", f"/incident update INC-{incident_id} <text>")
    incident = _locked(ctx, incident_id)
    require_update(ctx, incident)
    _not_resolved(incident, "updated")
    text = f":speech_balloon: {mention(ctx.caller.user_id)}: {show(note)}"
    return _changed(ctx, incident, "update", text)


def _resolve_command(ctx: CommandContext, incident_id: int, args: list[str], _link: str | None) -> Reply:
    summary = reason_from(
        " ".join(args), "A short summary of the resolution", f"/incident resolve INC-{incident_id} <summary>"
    )
    return resolve(ctx, _locked(ctx, incident_id), summary)


def resolve(ctx: CommandContext, incident: Incident, summary: str | None) -> Reply:
    require_manage(ctx, incident, "resolve")
    if incident.status == IncidentStatus.RESOLVED:
        when = incident.resolved_at.strftime("%d %b %H:%M UTC") if incident.resolved_at else "earlier"
        raise UsageError(f"{ref(incident)} is already resolved (since {when}).")
    incident.status = IncidentStatus.RESOLVED
    incident.resolved_at = ctx.now()
    tail = f": {show(summary)}" if summary else "."
    text = f":white_check_mark: {mention(ctx.caller.user_id)} resolved *{ref(incident)}*{tail}"
    return _changed(ctx, incident, "resolved", text)


def _reopen(ctx: CommandContext, incident_id: int, args: list[str], _link: str | None) -> Reply:
    why = reason_from(" ".join(args), "A reason to reopen", f"/incident reopen INC-{incident_id} <why>")
    incident = _locked(ctx, incident_id)
    require_manage(ctx, incident, "reopen")
    if incident.status != IncidentStatus.RESOLVED:
        raise UsageError(f"{ref(incident)} is not resolved (it is {incident.status}): nothing to reopen.")
    incident.status = IncidentStatus.OWNED if incident.owner else IncidentStatus.OPEN
    incident.resolved_at = None
    text = (
        f":leftwards_arrow_with_hook: {mention(ctx.caller.user_id)} reopened *{ref(incident)}*: {show(why)}"
    )
    return _changed(ctx, incident, "reopened", text)


def _changed(ctx: CommandContext, incident: Incident, kind: str, text: str) -> Reply:
    """Record a change: version, timers, the timeline, the card edited, a reply in its thread."""
    now = ctx.now()
    incident.version += 1
    incident.updated_at = now
    _reset_timers(incident, ctx.config, now, touched=True)
    ctx.session.add(incident)
    ctx.session.flush()
    incidents.add_event(ctx.session, incident, kind=kind, actor=ctx.caller.user_id, text=text, now=now)
    _refresh_card(ctx.session, incident, ctx.config, now)
    _thread_reply(ctx.session, incident, text, now)
    done = f"Done — the card of {ref(incident)} is updated and this is in its thread:\n{text}"
    return Reply(text=done, blocks=[section(done)])


def _refresh_card(session: Session, incident: Incident, config: CommandConfig, now: datetime) -> None:
    original = outbox.get(session, incident.card_message_id) if incident.card_message_id else None
    if original is None:
        return
    resolution = None
    if incident.status == IncidentStatus.RESOLVED:
        assert incident.id is not None
        resolution = _resolution(list(incidents.timeline(session, incident.id)))
    text, blocks = card(incident, config.zone, now, resolution=resolution)
    outbox.update_message(session, original, text=text, blocks=blocks, now=now)


def _thread_reply(session: Session, incident: Incident, text: str, now: datetime) -> None:
    original = outbox.get(session, incident.card_message_id) if incident.card_message_id else None
    if original is None:
        return
    outbox.post_message(
        session, original.lane, text=text, blocks=[section(text)], now=now, thread_under=original
    )


def _reset_timers(incident: Incident, config: CommandConfig, now: datetime, *, touched: bool = False) -> None:
    """sev1/sev2 and not resolved: the owner timer runs while nobody owns it (from when that began),
    the update timer from the last change. Otherwise no timer runs."""
    if incident.status == IncidentStatus.RESOLVED or incident.severity > 2:
        incident.owner_due_at = incident.update_due_at = None
        return
    if incident.owner is not None:
        incident.owner_due_at = None
    elif incident.owner_due_at is None:
        incident.owner_due_at = now + config.incident_owner_timeout
    if touched or incident.update_due_at is None:
        incident.update_due_at = now + config.incident_update_timeout


_CHANGES = {
    "assign": _assign,
    "escalate": _escalate_command,
    "severity": _severity,
    "update": _update,
    "resolve": _resolve_command,
    "reopen": _reopen,
}


# -- escalation: the escalation channel, the on-call group, the countries' channels ---------------------


def escalation_channel(config: CommandConfig) -> str | None:
    return config.escalation_channel or config.ops_channel


def _announce(
    session: Session,
    incident: Incident,
    config: CommandConfig,
    now: datetime,
    what: str,
    *,
    link: str | None,
    countries_too: bool = True,
) -> None:
    """To the escalation channel (paging the on-call group for sev1/sev2) and, unless told
    otherwise, to the liaison channels of the countries involved (not where the card is)."""
    name, emoji = SEVERITIES[incident.severity]
    where = card_reference(incident, link)
    countries = country_names(incident)
    lines = [f"{emoji} *{ref(incident)} · sev{incident.severity} ({name})* — {show(incident.title)}", what]
    if countries:
        lines.append(f"Countries: {countries}")
    lines.append(where)
    channel = escalation_channel(config)
    if channel:
        page = f"<!subteam^{config.oncall_group}> " if config.oncall_group and incident.severity <= 2 else ""
        body = "\n".join([page + lines[0], *lines[1:]]) if page else "\n".join(lines)
        urgency = outbox.URGENT if incident.severity <= 2 else outbox.ROUTINE
        outbox.post_message(session, channel, text=body, blocks=[section(body)], now=now, priority=urgency)
    for code in country_codes(incident) if countries_too else []:
        country = country_by_code(code)
        for channel_link in directory.links(session, code):
            if channel_link.channel_id in (incident.channel_id, channel):
                continue
            body = "\n".join(
                [
                    f"{emoji} *{ref(incident)}*, which involves *{country.name}*, is sev{incident.severity} "
                    f"({name}): {show(incident.title)}",
                    what,
                    where,
                ]
            )
            outbox.post_message(session, channel_link.channel_id, text=body, blocks=[section(body)], now=now)


# -- buttons ---------------------------------------------------------------------------------------


def press(ctx: CommandContext, action_id: str, incident_id: int, version: int, link: str | None) -> Reply:
    """A button of a card. A press on an out-of-date card (someone changed the incident since the
    card was drawn, e.g. a simultaneous press) changes nothing, but the attempt is written in the
    timeline so the thread shows both presses in the order they were handled."""
    incident = _locked(ctx, incident_id)
    label = BUTTON_LABELS.get(action_id, action_id)
    if action_id == ACTION_OWN:
        if not _is_owner(ctx, incident):
            require_take(ctx, incident)
    else:
        require_manage(ctx, incident, label.lower())
    if version != incident.version:
        return _stale_press(ctx, incident, label)
    if action_id == ACTION_OWN:
        done = take_ownership(ctx, incident)
    elif action_id == ACTION_ESCALATE:
        done = escalate(ctx, incident, None, "pressed *Escalate* on the card", link)
    elif action_id == ACTION_RESOLVE:
        done = resolve(ctx, incident, None)
    else:
        raise UsageError("That button does nothing any more.")
    return Reply(text=done.text, blocks=done.blocks, in_channel=True)  # applied: the card shows it


def _stale_press(ctx: CommandContext, incident: Incident, label: str) -> Reply:
    now = ctx.now()
    owner = f", owner {mention(incident.owner)}" if incident.owner else ", no owner"
    state = f"{incident.status}, sev{incident.severity}{owner}"
    note = (
        f":no_entry_sign: {mention(ctx.caller.user_id)} pressed *{label}* on an out-of-date card of "
        f"*{ref(incident)}* — not applied (it is now {state})."
    )
    incidents.add_event(ctx.session, incident, kind="refused", actor=ctx.caller.user_id, text=note, now=now)
    _thread_reply(ctx.session, incident, note, now)
    text = (
        f":warning: {ref(incident)} changed since that card was drawn (it is now {state}), "
        f"so *{label}* was not applied. Look at the card again and press once more if it is still needed."
    )
    return Reply(text=text, blocks=[section(text)])


# -- timers ----------------------------------------------------------------------------------------


def fire_timers(
    session: Session, config: CommandConfig, now: datetime, links: Mapping[int, str | None] | None = None
) -> int:
    """Re-announce sev1/sev2 incidents without an owner or an update, once per lapse.

    Each lapsed timer is claimed in the database before anything is sent (`incidents.claim_timer`),
    in the transaction that enqueues the announcement: any number of processes may run this at once.
    """
    fired = 0
    for incident, timer in incidents.due_timers(session, now):
        assert incident.id is not None
        seen = incident.owner_due_at if timer is Timer.OWNER else incident.update_due_at
        assert seen is not None
        period = config.incident_owner_timeout if timer is Timer.OWNER else config.incident_update_timeout
        next_due = seen + period
        while next_due <= now:  # down for several lapses: announce once, then wait a full period
            next_due += period
        if not incidents.claim_timer(session, incident.id, timer, seen=seen, next_due=next_due):
            continue
        since = incident.opened_at if timer is Timer.OWNER else incident.updated_at
        minutes = int((now - since).total_seconds() // 60)
        if timer is Timer.OWNER:
            what = f":alarm_clock: Still *no owner* {minutes} min after it was opened."
        else:
            owner = mention(incident.owner) if incident.owner else "nobody"
            what = f":alarm_clock: *No update* for {minutes} min (owner: {owner})."
        link = (links or {}).get(incident.id)
        _announce(session, incident, config, now, what, link=link, countries_too=False)
        incidents.add_event(session, incident, kind=f"timer-{timer.value}", actor="", text=what, now=now)
        where = (
            f" Re-announced in <#{escalation_channel(config)}>."
            if escalation_channel(config)
            else " (No escalation channel is configured: LIAISON_ESCALATION_CHANNEL.)"
        )
        _thread_reply(session, incident, what + where, now)
        fired += 1
    return fired
