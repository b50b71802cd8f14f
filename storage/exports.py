"""CSV exports of the ledgers: movements, pledges, alert notices and acknowledgements, incidents and
their timelines.

Files open correctly in Excel and LibreOffice: UTF-8 with a byte-order mark, CRLF line ends, times in
ISO 8601 with their UTC offset (in the configured zone). No cell can run as a formula: text starting
with `=`, `+`, `-`, `@` (or a tab or carriage return) is prefixed with an apostrophe, as OWASP
recommends for CSV injection. Numbers are written as numbers (a negative count is not text).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session, col

from storage.models import Acknowledgement, AlertNotice, Incident, IncidentEvent, Movement, Pledge

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | None


@dataclass(frozen=True)
class CsvFile:
    filename: str
    title: str
    content: bytes
    rows: int


def neutralise(value: Cell) -> Cell:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> tuple[bytes, int]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow(["" if cell is None else neutralise(cell) for cell in row])
        count += 1
    return (BOM + buffer.getvalue()).encode("utf-8"), count


def _iso(moment: datetime | None, zone: ZoneInfo) -> str | None:
    return None if moment is None else moment.astimezone(zone).isoformat(timespec="seconds")


def movements_rows(
    session: Session, zone: ZoneInfo, country: str | None
) -> tuple[list[str], list[list[Cell]]]:
    query = select(Movement).order_by(col(Movement.id))
    if country is not None:
        query = query.where(col(Movement.country) == country)
    header = [
        "entry",
        "recorded_at",
        "country",
        "kind",
        "count",
        "capability",
        "location",
        "note",
        "recorded_by",
        "channel",
        "undoes_entry",
        "command",
    ]
    rows: list[list[Cell]] = [
        [
            m.id,
            _iso(m.created_at, zone),
            m.country,
            str(m.kind),
            m.count,
            m.capability,
            m.location,
            m.note,
            m.recorded_by,
            m.channel_id,
            m.reverses_id,
            m.command_text,
        ]
        for m in session.execute(query).scalars()
    ]
    return header, rows


def pledges_rows(session: Session, zone: ZoneInfo, country: str | None) -> tuple[list[str], list[list[Cell]]]:
    query = select(Pledge).order_by(col(Pledge.id))
    if country is not None:
        query = query.where(col(Pledge.country) == country)
    header = [
        "entry",
        "recorded_at",
        "country",
        "capability",
        "headcount",
        "recorded_by",
        "channel",
        "command",
    ]
    rows: list[list[Cell]] = [
        [
            p.id,
            _iso(p.created_at, zone),
            p.country,
            p.capability,
            p.headcount,
            p.recorded_by,
            p.channel_id,
            p.command_text,
        ]
        for p in session.execute(query).scalars()
    ]
    return header, rows


def notices_rows(session: Session, zone: ZoneInfo) -> tuple[list[str], list[list[Cell]]]:
    header = ["notice", "issued_at", "level", "previous_level", "reason", "set_by"]
    rows: list[list[Cell]] = [
        [n.id, _iso(n.created_at, zone), n.level, n.previous_level, n.reason, n.set_by]
        for n in session.execute(select(AlertNotice).order_by(col(AlertNotice.id))).scalars()
    ]
    return header, rows


def acknowledgements_rows(
    session: Session, zone: ZoneInfo, country: str | None
) -> tuple[list[str], list[list[Cell]]]:
    query = select(Acknowledgement).order_by(col(Acknowledgement.notice_id), col(Acknowledgement.id))
    if country is not None:
        query = query.where(col(Acknowledgement.country) == country)
    header = ["notice", "country", "acknowledged_at", "acknowledged_by", "on_behalf", "channel"]
    rows: list[list[Cell]] = [
        [
            a.notice_id,
            a.country,
            _iso(a.created_at, zone),
            a.user_id,
            "yes" if a.on_behalf else "no",
            a.channel_id,
        ]
        for a in session.execute(query).scalars()
    ]
    return header, rows


def _incidents(session: Session, country: str | None) -> list[Incident]:
    incidents = list(session.execute(select(Incident).order_by(col(Incident.id))).scalars())
    if country is None:
        return incidents
    return [i for i in incidents if country in i.countries.split(",")]


def incidents_rows(
    session: Session, zone: ZoneInfo, country: str | None
) -> tuple[list[str], list[list[Cell]]]:
    header = [
        "incident",
        "title",
        "severity",
        "status",
        "countries",
        "owner",
        "opened_by",
        "opened_at",
        "resolved_at",
        "channel",
        "source_message",
    ]
    rows: list[list[Cell]] = [
        [
            f"INC-{i.id}",
            i.title,
            f"sev{i.severity}",
            str(i.status),
            i.countries.replace(",", " "),
            i.owner,
            i.opened_by,
            _iso(i.opened_at, zone),
            _iso(i.resolved_at, zone),
            i.channel_id,
            i.source_permalink,
        ]
        for i in _incidents(session, country)
    ]
    return header, rows


def incident_timeline_rows(
    session: Session, zone: ZoneInfo, country: str | None
) -> tuple[list[str], list[list[Cell]]]:
    """Every line of the incidents' timelines, in the order they were committed."""
    wanted = {i.id for i in _incidents(session, country)}
    query = select(IncidentEvent).order_by(col(IncidentEvent.incident_id), col(IncidentEvent.id))
    header = ["incident", "at", "kind", "by", "text"]
    rows: list[list[Cell]] = [
        [f"INC-{e.incident_id}", _iso(e.created_at, zone), e.kind, e.actor or "Liaison", e.text]
        for e in session.execute(query).scalars()
        if e.incident_id in wanted
    ]
    return header, rows


# The export's files, in the order they are sent: (name in the file name, title).
EXPORT_FILES = (
    ("movements", "Movement ledger"),
    ("pledges", "Pledges"),
    ("notices", "Alert notices"),
    ("acknowledgements", "Acknowledgements of notices"),
    ("incidents", "Incidents"),
    ("incident-timeline", "Incident timelines"),
)


def export_files(session: Session, zone: ZoneInfo, country: str | None, stamp: str) -> list[CsvFile]:
    """Every export file for one country (or all), named with `stamp` (e.g. the local date)."""
    suffix = f"-{country.lower()}" if country else ""
    tables = (
        movements_rows(session, zone, country),
        pledges_rows(session, zone, country),
        notices_rows(session, zone),
        acknowledgements_rows(session, zone, country),
        incidents_rows(session, zone, country),
        incident_timeline_rows(session, zone, country),
    )
    files = []
    for (name, title), (header, rows) in zip(EXPORT_FILES, tables, strict=True):
        content, count = to_csv(header, rows)
        files.append(CsvFile(f"liaison-{name}{suffix}-{stamp}.csv", title, content, count))
    return files
