"""`/deployment history <country>` — the last changes to a country's ledgers: who, when, what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from commands.blocks import Block, context, escape, header, section, text_sections
from commands.common import CommandConfig, Reply, format_local_time, mention, plural
from commands.countries import Country, flag
from storage import ledger
from storage.models import Movement, MovementKind, Pledge

HISTORY_LENGTH = 20


@dataclass(frozen=True)
class Change:
    at: datetime
    by: str
    what: str
    order: int  # ties on the same second: movements and pledges in their own id order


def changes_of(session: Session, country: str, limit: int = HISTORY_LENGTH) -> list[Change]:
    movements = session.execute(
        select(Movement)
        .where(col(Movement.country) == country)
        .order_by(col(Movement.id).desc())
        .limit(limit)
    ).scalars()
    pledges = list(
        session.execute(
            select(Pledge)
            .where(col(Pledge.country) == country)
            .order_by(col(Pledge.id).desc())
            .limit(limit + 1)
        ).scalars()
    )
    changes = [Change(m.created_at, m.recorded_by, _movement(m), m.id or 0) for m in movements]
    for pledge in pledges:
        before = ledger.previous_headcount(session, pledge)
        what = f"capability {pledge.capability}" if pledge.capability else "total"
        was = "" if before is None else f" (was {before:,})"
        changes.append(
            Change(
                pledge.created_at,
                pledge.recorded_by,
                f":memo: pledge {what}: *{pledge.headcount:,}*{was}",
                pledge.id or 0,
            )
        )
    changes.sort(key=lambda c: (c.at, c.order), reverse=True)
    return changes[:limit]


def _movement(movement: Movement) -> str:
    kind = MovementKind(movement.kind)
    verb = "arrived" if kind is MovementKind.ARRIVAL else "left"
    detail = ""
    if movement.capability:
        detail += f" ({movement.capability})"
    if movement.location:
        detail += f" at {escape(movement.location)}"
    if movement.reverses_id is not None:
        return (
            f":leftwards_arrow_with_hook: *undo* of entry #{movement.reverses_id}: "
            f"{abs(movement.count):,} {verb}{detail} taken back · entry #{movement.id}"
        )
    emoji = ":airplane_arriving:" if kind is MovementKind.ARRIVAL else ":airplane_departure:"
    note = f" — _{escape(movement.note)}_" if movement.note else ""
    return f"{emoji} *{movement.count:,} {verb}*{detail}{note} · entry #{movement.id}"


def history_reply(session: Session, config: CommandConfig, country: Country, now: datetime) -> Reply:
    changes = changes_of(session, country.code)
    if not changes:
        text = f"Nothing recorded for {country.name} yet."
        return Reply(text=text, blocks=[section(f"{flag(country)} {text}")])
    lines = [f"`{format_local_time(c.at, config.zone, now)}` {mention(c.by)} {c.what}" for c in changes]
    blocks: list[Block] = [
        header(f"{country.name} — last {plural(len(changes), 'change')}"),
        *text_sections(lines),
        context(
            f"Newest first · times in {config.zone.key} · `/liaison export {country.alpha3.lower()}` for everything"
        ),
    ]
    return Reply(text=f"{country.name}: last {plural(len(changes), 'change')}.", blocks=blocks)
