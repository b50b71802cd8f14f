"""The morning digest: what it reads from the database (`gather`) and how it reads in Slack (`render`).

`render` is a pure function of `DigestData`, so the golden tests need neither Slack nor a database.
Whatever the number of countries, the message stays within Block Kit's limits: long lists are cut to
a character budget and point to `/deployment` for the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from commands.alert import current_level
from commands.alert_levels import AlertLevel
from commands.blocks import (
    MAX_SECTION_TEXT,
    Block,
    code_sections,
    context,
    escape,
    fit_blocks,
    header,
    percent,
    progress_bar,
    section,
)
from commands.common import CommandConfig, Reply, mention, plural
from commands.countries import country_by_code, flag
from commands.incident_feed import IncidentProvider, IncidentSummary
from storage import alerts, digests, totals
from storage.digests import MovementTotals, PledgeChange
from storage.ledger import Bucket, CountryStatus
from storage.models import AlertNotice

SILENCE = timedelta(hours=48)
CHART_DAYS = 14
TABLE_ROWS = 15  # countries in the status table of the overall view; the rest via /deployment
MOVEMENT_BUDGET = 2500  # characters; with the other sections the message stays well under ~12k
LIST_BUDGET = 1500
NAMES_BUDGET = 800
NAME_WIDTH = 20


@dataclass
class DigestData:
    scope: str | None  # a country code, or None for the overall view
    now: datetime
    since: datetime
    statuses: dict[str, CountryStatus]
    movements: dict[str, MovementTotals]
    pledge_changes: list[PledgeChange]
    last_heard: dict[str, datetime]
    level: AlertLevel
    notice: AlertNotice | None
    notified: list[str] = field(default_factory=list)  # countries the current notice went to
    acknowledged: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # country -> (user, at)
    arrivals_by_day: list[tuple[date, int]] = field(default_factory=list)
    incidents: Sequence[IncidentSummary] | None = None  # None: incidents are not tracked (no section)

    @property
    def pending(self) -> list[str]:
        return sorted((c for c in self.notified if c not in self.acknowledged), key=_name)


def _name(code: str) -> str:
    return country_by_code(code).name


def gather(
    session: Session,
    config: CommandConfig,
    *,
    window: digests.Window,
    scope: str | None,
) -> DigestData:
    """What a digest shows at the end of its window (`window.until`, its "now"); its "since"
    sections hold the window's rows (storage.digests.Window says which, on each store)."""
    now, since = window.until, window.since
    level, notice = current_level(session, config.alert_scale)
    notified: list[str] = []
    acknowledged: dict[str, tuple[str, datetime]] = {}
    if notice is not None and notice.id is not None:
        notified = sorted({d.country for d in alerts.deliveries(session, notice.id, scope)})
        acknowledged = {
            code: (ack.user_id, ack.created_at)
            for code, ack in alerts.acknowledgements(session, notice.id).items()
            if scope is None or code == scope
        }
    open_incidents = None
    incidents: IncidentProvider | None = config.incidents
    if incidents is not None:
        open_incidents = [
            incident for incident in incidents(session) if scope is None or scope in incident.countries
        ]
    return DigestData(
        scope=scope,
        now=now,
        since=since,
        statuses=totals.deployment_status(session, scope),
        movements=digests.movement_totals_between(session, window, scope),
        pledge_changes=digests.pledge_changes_between(session, window, scope),
        last_heard=digests.last_movement_at(session),
        level=level,
        notice=notice,
        notified=notified,
        acknowledged=acknowledged,
        arrivals_by_day=arrivals_by_day(session, config.zone, now, scope),
        incidents=open_incidents,
    )


def arrivals_by_day(
    session: Session, zone: ZoneInfo, now: datetime, scope: str | None, days: int = CHART_DAYS
) -> list[tuple[date, int]]:
    """Arrivals per local day over the last `days` days (today included), one aggregate per day."""
    today = now.astimezone(zone).date()
    result = []
    for offset in range(days - 1, -1, -1):
        day = today - timedelta(days=offset)
        start = datetime.combine(day, datetime.min.time(), tzinfo=zone)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
        result.append((day, digests.arrivals_between(session, start, min(end, now), scope)))
    return result


# -- rendering ------------------------------------------------------------------------------------


def render(data: DigestData, zone: ZoneInfo, *, title: str | None = None) -> Reply:
    local_now = data.now.astimezone(zone)
    title = title or ("Morning digest" if local_now.hour < 12 else "Daily digest")
    scope_name = _name(data.scope) if data.scope else None
    heading = f"{title} — {local_now:%A %-d %B}"
    if scope_name:
        heading = f"{scope_name} — {heading}"
    blocks: list[Block] = [header(heading)]
    blocks += _alert_blocks(data, zone)
    blocks += _totals_blocks(data)
    blocks += _movement_blocks(data, zone)
    blocks += _status_blocks(data)
    blocks += _silent_blocks(data)
    if data.incidents is not None:
        blocks += _incident_blocks(data.incidents)
    blocks.append(
        context(
            f"Since {_when(data.since, zone, data.now)} · times in {zone.key} · "
            "`/deployment` for every country · `/alert status` for acknowledgements"
        )
    )
    return Reply(text=_fallback(data, zone, heading), blocks=fit_blocks(blocks))


def _when(moment: datetime, zone: ZoneInfo, now: datetime) -> str:
    local, today = moment.astimezone(zone), now.astimezone(zone).date()
    if local.date() == today:
        return f"today {local:%H:%M}"
    if local.date() == today - timedelta(days=1):
        return f"yesterday {local:%H:%M}"
    return f"{local:%a %-d %b %H:%M}"


def _ago(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    return f"{hours} h" if hours < 72 else f"{hours // 24} days"


def _names_within(codes: Sequence[str], budget: int) -> str:
    shown: list[str] = []
    used = 0
    for code in codes:
        name = _name(code)
        if shown and used + len(name) + 2 > budget:
            break
        shown.append(name)
        used += len(name) + 2
    rest = len(codes) - len(shown)
    return ", ".join(shown) + (f" and {rest} more" if rest else "")


def _alert_blocks(data: DigestData, zone: ZoneInfo) -> list[Block]:
    level = data.level
    if data.notice is None:
        return [section(f":{level.emoji}: *Alert level: {level.label}* — no notice issued yet.")]
    notice = data.notice
    line = (
        f":{level.emoji}: *Alert level: {level.label}* since {_when(notice.created_at, zone, data.now)} "
        f"(notice #{notice.id})"
    )
    if data.scope is not None:
        name = _name(data.scope)
        ack = data.acknowledged.get(data.scope)
        if ack is not None:
            line += f"\n:white_check_mark: {name} acknowledged ({mention(ack[0])}, {_when(ack[1], zone, data.now)})."
        elif data.scope in data.notified:
            line += f"\n:hourglass_flowing_sand: *{name} has not acknowledged it yet* — `/alert ack` here."
        return [section(line)]
    pending = data.pending
    if not data.notified:
        line += "\nNo liaison channel is linked yet, so no country was notified."
    elif not pending:
        line += (
            f"\n:white_check_mark: Acknowledged by all {plural(len(data.notified), 'country', 'countries')}."
        )
    else:
        names = _names_within(pending, NAMES_BUDGET)
        line += (
            f"\n:hourglass_flowing_sand: *Not acknowledged by {len(pending)} of "
            f"{plural(len(data.notified), 'country', 'countries')}:* {names}"
        )
    return [section(line)]


def _totals(data: DigestData) -> Bucket:
    grand = Bucket()
    for status in data.statuses.values():
        grand.add(status.total)
    return grand


def _bar(bucket: Bucket) -> str:
    return f"{progress_bar(bucket.fill_rate)} {percent(bucket.fill_rate)}"


def _totals_blocks(data: DigestData) -> list[Block]:
    grand = _totals(data)
    if not data.statuses:
        return [section(":globe_with_meridians: Nothing recorded yet: no pledge and no movement.")]
    where = "" if data.scope else f" · {plural(len(data.statuses), 'country', 'countries')}"
    return [
        section(
            f":bar_chart: *{grand.on_duty:,} on duty* of {grand.pledged:,} pledged — {_bar(grand)}"
            f" · gap *{grand.gap:,}*{where}"
        )
    ]


def _movement_blocks(data: DigestData, zone: ZoneInfo) -> list[Block]:
    arrived = sum(t.arrived for t in data.movements.values())
    departed = sum(t.departed for t in data.movements.values())
    changes = data.pledge_changes
    title = f"*Since {_when(data.since, zone, data.now)}*"
    if not data.movements and not changes:
        return [section(f"{title}: no arrival, departure or pledge change recorded.")]
    summary = (
        f"{title}: :airplane_arriving: *{arrived:+,}* arrived · :airplane_departure: *{departed:,}* left"
    )
    if changes:
        summary += f" · {plural(len(changes), 'pledge change')}"
    if not data.scope:
        summary += f" · {plural(len(data.movements), 'country', 'countries')} moved"
    lines = [summary]
    ordered = sorted(data.movements.items(), key=lambda kv: (-(kv[1].arrived + kv[1].departed), _name(kv[0])))
    for code, moved in ordered:
        parts = []
        if moved.arrived:
            parts.append(f"{moved.arrived:+,} arrived")
        if moved.departed:
            parts.append(f"{moved.departed:,} left")
        if not parts:
            parts.append(f"{plural(moved.entries, 'entry', 'entries')} that cancel out")
        lines.append(f"{flag(country_by_code(code))} {_name(code)}: {', '.join(parts)}")
    for change in changes:
        what = change.capability or "total"
        before = "none" if change.before is None else f"{change.before:,}"
        lines.append(
            f":memo: {_name(change.country)} pledge ({what}): {before} → *{change.after:,}* by {mention(change.by)}"
        )
    return _lines_within(lines, MOVEMENT_BUDGET, "more lines — `/arrivals` for today's entries")


def _lines_within(lines: list[str], budget: int, rest_label: str) -> list[Block]:
    kept: list[str] = []
    for line in lines:
        budget -= len(line) + 1
        if budget < 0:
            break
        kept.append(line)
    blocks = _sections(kept)
    if len(kept) < len(lines):
        blocks.append(context(f":scissors: {len(lines) - len(kept):,} {rest_label}"))
    return blocks


def _sections(lines: list[str]) -> list[Block]:
    chunks: list[list[str]] = [[]]
    size = 0
    for line in lines:
        if chunks[-1] and size + len(line) + 1 > MAX_SECTION_TEXT:
            chunks.append([])
            size = 0
        chunks[-1].append(line)
        size += len(line) + 1
    return [section("\n".join(chunk)) for chunk in chunks if chunk]


def ordered_by_gap(statuses: dict[str, CountryStatus]) -> list[tuple[str, Bucket]]:
    """Countries with the largest gap against their pledge first; then by name."""
    totals = [(code, status.total) for code, status in statuses.items()]
    totals.sort(key=lambda item: (-item[1].gap, _name(item[0])))
    return totals


def _status_blocks(data: DigestData) -> list[Block]:
    if not data.statuses:
        return []
    if data.scope is not None:
        status = data.statuses.get(data.scope)
        if status is None:
            return []
        rows = [f"{'Capability':<16}{'Pledged':>8}{'On duty':>8}{'Gap':>6}  Fill"]
        for key, bucket in sorted(
            status.by_capability.items(), key=lambda kv: (kv[0] is None, -kv[1].gap, kv[0] or "")
        ):
            rows.append(
                f"{(key or 'unspecified')[:15]:<16}{bucket.pledged:>8,}{bucket.on_duty:>8,}{bucket.gap:>6,}  {_bar(bucket)}"
            )
        return [section("*By capability*"), *code_sections(rows)]
    ordered = ordered_by_gap(data.statuses)
    shown = ordered[:TABLE_ROWS]
    rows = [f"{'Country':<{NAME_WIDTH}}{'Pledged':>8}{'On duty':>8}{'Gap':>6}  Fill"]
    rows += [
        f"{_name(code)[: NAME_WIDTH - 1]:<{NAME_WIDTH}}{b.pledged:>8,}{b.on_duty:>8,}{b.gap:>6,}  {_bar(b)}"
        for code, b in shown
    ]
    title = "*Biggest gaps against pledges*"
    blocks = [section(title), *code_sections(rows)]
    if len(ordered) > len(shown):
        rest = ordered[len(shown) :]
        short = sum(1 for _, b in rest if b.gap > 0)
        blocks.append(
            context(
                f"{plural(len(rest), 'more country', 'more countries')} ({short} still short) — "
                "`/deployment` lists them all."
            )
        )
    return blocks


def silent_countries(data: DigestData) -> list[tuple[str, Bucket, datetime | None]]:
    """Countries short of their pledge with no movement recorded for more than 48 hours."""
    silent = []
    for code, bucket in ordered_by_gap(data.statuses):
        if bucket.gap <= 0 or bucket.pledged <= 0:
            continue
        last = data.last_heard.get(code)
        if last is None or data.now - last > SILENCE:
            silent.append((code, bucket, last))
    return silent


def _silent_blocks(data: DigestData) -> list[Block]:
    silent = silent_countries(data)
    if not silent:
        return []
    lines = [
        f"{flag(country_by_code(code))} {_name(code)} — gap {bucket.gap:,}, "
        + ("nothing recorded yet" if last is None else f"last movement {_ago(data.now - last)} ago")
        for code, bucket, last in silent
    ]
    title = f":mute: *Silent for more than 48 h while short of pledge* ({len(silent)})"
    return _lines_within([title, *lines], LIST_BUDGET, "more silent countries — `/deployment`")


def _incident_blocks(incidents: Sequence[IncidentSummary]) -> list[Block]:
    if not incidents:
        return [section(":large_green_circle: *Open incidents:* none.")]
    lines = [f":rotating_light: *Open incidents* ({len(incidents)})"]
    lines += [
        f"`{i.severity}` *{i.ref}* {escape(i.title)} — {i.status}"
        + (f" · {', '.join(_name(c) for c in i.countries)}" if i.countries else "")
        for i in sorted(incidents, key=IncidentSummary.rank)
    ]
    return _lines_within(lines, LIST_BUDGET, "more incidents")


def _fallback(data: DigestData, zone: ZoneInfo, heading: str) -> str:
    grand = _totals(data)
    parts = [
        f"{heading}.",
        f"Alert level {data.level.label}.",
        f"{grand.on_duty:,} on duty of {grand.pledged:,} pledged ({percent(grand.fill_rate)}).",
    ]
    arrived = sum(t.arrived for t in data.movements.values())
    departed = sum(t.departed for t in data.movements.values())
    parts.append(f"Since {_when(data.since, zone, data.now)}: {arrived:+,} arrived, {departed:,} left.")
    if data.scope is None and data.pending:
        parts.append(f"{len(data.pending)} countries have not acknowledged the current notice.")
    silent = silent_countries(data)
    if silent:
        parts.append(f"{len(silent)} short countries silent for more than 48 h.")
    return " ".join(parts)
