"""The App Home tab: the live board, within the 100-block limit of a Home view.

`gather_board` reads what one user's board shows; `board_view` renders it (pure).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from commands.alert import current_level
from commands.alert_levels import AlertLevel
from commands.blocks import (
    Block,
    code_sections,
    context,
    divider,
    escape,
    header,
    percent,
    progress_bar,
    section,
)
from commands.common import CommandConfig, Reply, format_local_time, mention, plural
from commands.countries import country_by_code, flag
from commands.digest_content import ordered_by_gap
from commands.incident_feed import IncidentSummary
from storage import alerts, directory, totals
from storage.ledger import Bucket, CountryStatus
from storage.models import AlertNotice, Role

MAX_HOME_BLOCKS = 100
NAME_WIDTH = 20
MAX_TABLE_SECTIONS = 8  # ~45 rows each: 200+ countries, far below 100 blocks
MAX_INCIDENTS = 15


def home_view(*sections: Reply) -> dict[str, Any]:
    """A Home view made of other replies' blocks (kept for simple boards and tests)."""
    blocks: list[dict[str, Any]] = []
    for reply in sections:
        blocks.extend(reply.blocks)
    blocks.append(context("Type `/deployment`, `/arrivals help` or `/pledge help` in any channel."))
    return {"type": "home", "blocks": _fit(blocks)}


def _fit(blocks: list[Block]) -> list[Block]:
    if len(blocks) > MAX_HOME_BLOCKS:
        blocks = [*blocks[: MAX_HOME_BLOCKS - 1], context(":scissors: Cut short to fit the Home tab.")]
    return blocks


@dataclass
class Board:
    user_id: str
    roles: set[Role]
    own_countries: list[str]
    statuses: dict[str, CountryStatus]
    level: AlertLevel
    notice: AlertNotice | None
    notified: list[str] = field(default_factory=list)
    acknowledged: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    incidents: Sequence[IncidentSummary] | None = None
    now: datetime | None = None


@dataclass
class SharedBoard:
    """What every user's board shows alike, read once per refresh."""

    statuses: dict[str, CountryStatus]
    level: AlertLevel
    notice: AlertNotice | None
    notified: list[str]
    acknowledged: dict[str, tuple[str, datetime]]
    incidents: Sequence[IncidentSummary] | None


def gather_shared(session: Session, config: CommandConfig) -> SharedBoard:
    level, notice = current_level(session, config.alert_scale)
    notified: list[str] = []
    acknowledged: dict[str, tuple[str, datetime]] = {}
    if notice is not None and notice.id is not None:
        notified = sorted({d.country for d in alerts.deliveries(session, notice.id)})
        acknowledged = {
            code: (ack.user_id, ack.created_at)
            for code, ack in alerts.acknowledgements(session, notice.id).items()
        }
    return SharedBoard(
        statuses=totals.deployment_status(session),
        level=level,
        notice=notice,
        notified=notified,
        acknowledged=acknowledged,
        incidents=None if config.incidents is None else list(config.incidents(session)),
    )


def gather_board(
    session: Session, config: CommandConfig, user_id: str, now: datetime, shared: SharedBoard | None = None
) -> Board:
    shared = shared or gather_shared(session, config)
    roles: set[Role] = {Role.ADMIN} if user_id in config.admins else set()
    row = directory.role_of(session, user_id)
    if row is not None:
        roles.add(Role(row.role))
    return Board(
        user_id=user_id,
        roles=roles,
        own_countries=directory.countries_of(session, user_id),
        statuses=shared.statuses,
        level=shared.level,
        notice=shared.notice,
        notified=shared.notified,
        acknowledged=shared.acknowledged,
        incidents=shared.incidents,
        now=now,
    )


def _bar(bucket: Bucket) -> str:
    return f"{progress_bar(bucket.fill_rate)} {percent(bucket.fill_rate)}"


def _name(code: str) -> str:
    return country_by_code(code).name


def board_view(board: Board, config: CommandConfig) -> dict[str, Any]:
    now = board.now
    blocks: list[Block] = [header("Liaison — the board")]
    blocks.append(section(_role_line(board)))
    blocks.append(section(_alert_text(board, config)))
    blocks.append(divider())

    grand = Bucket()
    for status in board.statuses.values():
        grand.add(status.total)
    if board.statuses:
        blocks.append(
            section(
                f":bar_chart: *{grand.on_duty:,} on duty* of {grand.pledged:,} pledged\n"
                f"{progress_bar(grand.fill_rate, 20)} {percent(grand.fill_rate)} · gap *{grand.gap:,}* · "
                f"{plural(len(board.statuses), 'country', 'countries')}"
            )
        )
    else:
        blocks.append(section(":globe_with_meridians: Nothing recorded yet: no pledge and no movement."))

    own = [code for code in board.own_countries]
    for code in own[:10]:
        bucket = board.statuses[code].total if code in board.statuses else Bucket()
        blocks.append(
            section(
                f"{flag(country_by_code(code))} *{_name(code)}* (yours) — *{bucket.on_duty:,}* on duty of "
                f"{bucket.pledged:,} · {_bar(bucket)}" + (f" · gap *{bucket.gap:,}*" if bucket.gap else "")
            )
        )

    if board.statuses:
        ordered = ordered_by_gap(board.statuses)
        ordered.sort(key=lambda item: item[0] not in own)  # stable: own countries first, then by gap
        rows = [f"{'Country':<{NAME_WIDTH}}{'Pledged':>8}{'On duty':>8}{'Gap':>6}  Fill"]
        rows += [
            f"{('* ' if code in own else '') + _name(code)[: NAME_WIDTH - 3]:<{NAME_WIDTH}}"
            f"{b.pledged:>8,}{b.on_duty:>8,}{b.gap:>6,}  {_bar(b)}"
            for code, b in ordered
        ]
        table = code_sections(rows)
        blocks.append(section("*Every country, biggest gaps first*" + (" (yours marked *)" if own else "")))
        blocks += table[:MAX_TABLE_SECTIONS]
        if len(table) > MAX_TABLE_SECTIONS:
            blocks.append(context(":scissors: More countries than fit here: `/deployment` lists them all."))

    if board.incidents is not None:
        blocks.append(divider())
        blocks += _incident_blocks(board.incidents)

    updated = format_local_time(now, config.zone) if now is not None else ""
    blocks.append(
        context(
            f"Updated {updated} ({config.zone.key}) · `/deployment <country>` for detail · "
            "`/digest subscribe` for a morning digest"
        )
    )
    return {"type": "home", "blocks": _fit(blocks)}


def _role_line(board: Board) -> str:
    parts = []
    if Role.ADMIN in board.roles:
        parts.append("an *admin*")
    if Role.OPS in board.roles:
        parts.append("*operations centre* (ops)")
    if board.own_countries:
        names = ", ".join(f"{flag(country_by_code(c))} {_name(c)}" for c in board.own_countries[:10])
        parts.append(f"liaison officer for {names}")
    if not parts:
        return (
            f":bust_in_silhouette: {mention(board.user_id)}, you have no role yet: you can read everything here. "
            "An admin can make you a liaison officer (`/liaison assign`)."
        )
    return f":bust_in_silhouette: {mention(board.user_id)}, you are " + " and ".join(parts) + "."


def _alert_text(board: Board, config: CommandConfig) -> str:
    level = board.level
    if board.notice is None:
        return f":{level.emoji}: *Alert level: {level.label}* — no notice issued yet."
    when = format_local_time(board.notice.created_at, config.zone, board.now)
    lines = [f":{level.emoji}: *Alert level: {level.label}* · notice #{board.notice.id} at {when}"]
    for code in board.own_countries[:10]:
        ack = board.acknowledged.get(code)
        if ack is not None:
            lines.append(f":white_check_mark: {_name(code)} acknowledged ({mention(ack[0])}).")
        elif code in board.notified:
            lines.append(f":hourglass_flowing_sand: *{_name(code)} has not acknowledged yet* — `/alert ack`.")
    pending = sorted((c for c in board.notified if c not in board.acknowledged), key=_name)
    if board.notified:
        acked = len(board.notified) - len(pending)
        line = f"Acknowledged by *{acked} of {plural(len(board.notified), 'country', 'countries')}*"
        if pending:
            names = ", ".join(_name(c) for c in pending[:25])
            more = f" and {len(pending) - 25} more" if len(pending) > 25 else ""
            line += f" · waiting for {names}{more}"
        lines.append(line)
    return "\n".join(lines)


def _incident_blocks(incidents: Sequence[IncidentSummary]) -> list[Block]:
    if not incidents:
        return [section(":large_green_circle: *Open incidents:* none.")]
    ordered = sorted(incidents, key=IncidentSummary.rank)
    lines = [
        f"`{i.severity}` *{i.ref}* {escape(i.title)} — {i.status}"
        + (f" · {', '.join(_name(c) for c in i.countries)}" if i.countries else "")
        for i in ordered[:MAX_INCIDENTS]
    ]
    blocks: list[Block] = [
        section(f":rotating_light: *Open incidents* ({len(incidents)})\n" + "\n".join(lines))
    ]
    if len(ordered) > MAX_INCIDENTS:
        blocks.append(context(f"{len(ordered) - MAX_INCIDENTS} more open incidents."))
    return blocks
