"""How an incident looks: its card (edited in place), list lines, timeline lines, escalation posts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from commands.blocks import (
    Block,
    actions,
    button,
    context,
    fields_section,
    header,
    section,
    text_sections,
    truncate,
)
from commands.common import format_local_time, mention
from commands.countries import country_by_code, flag
from commands.slack_text import show
from storage.models import Incident, IncidentEvent, IncidentStatus

ACTION_OWN = "incident_own"
ACTION_ESCALATE = "incident_escalate"
ACTION_RESOLVE = "incident_resolve"
ACTIONS_BLOCK = "incident_actions"
BUTTON_LABELS = {ACTION_OWN: "Take ownership", ACTION_ESCALATE: "Escalate", ACTION_RESOLVE: "Resolve"}
MAX_DESCRIPTION_SHOWN = 2500

SEVERITIES: dict[int, tuple[str, str]] = {
    1: ("critical", ":red_circle:"),
    2: ("major", ":large_orange_circle:"),
    3: ("moderate", ":large_yellow_circle:"),
    4: ("minor", ":white_circle:"),
}
STATUS_LABELS = {
    IncidentStatus.OPEN: "Open — nobody owns it yet",
    IncidentStatus.OWNED: "Owned",
    IncidentStatus.RESOLVED: "Resolved",
}


def ref(incident: Incident) -> str:
    return f"INC-{incident.id}"


def severity_label(severity: int) -> str:
    name, emoji = SEVERITIES[severity]
    return f"{emoji} sev{severity} ({name})"


def country_codes(incident: Incident) -> list[str]:
    return [code for code in incident.countries.split(",") if code]


def country_names(incident: Incident, *, flags: bool = True) -> str:
    names = []
    for code in country_codes(incident):
        country = country_by_code(code)
        names.append(f"{flag(country)} {country.name}" if flags else country.name)
    return ", ".join(names)


def button_value(incident: Incident) -> str:
    """The incident and the version the card shows: a press on an older card is recognised."""
    return f"{incident.id}:{incident.version}"


def parse_button_value(value: str) -> tuple[int, int] | None:
    first, _, second = value.partition(":")
    if not (first.isdigit() and second.isdigit()):
        return None
    return int(first), int(second)


def card(
    incident: Incident,
    zone: ZoneInfo,
    now: datetime,
    *,
    resolution: IncidentEvent | None = None,
    with_buttons: bool = True,
) -> tuple[str, list[Block]]:
    """The incident card: the fallback text and its blocks."""
    name, emoji = SEVERITIES[incident.severity]
    status = IncidentStatus(incident.status)
    title = show(incident.title)
    body = f"*{title}*"
    if incident.description:
        body += "\n" + show(truncate(incident.description, MAX_DESCRIPTION_SHOWN))
    owner = mention(incident.owner) if incident.owner else "_nobody yet_"
    opened = format_local_time(incident.opened_at, zone, now)
    blocks: list[Block] = [
        header(f"{ref(incident)} · sev{incident.severity} · {status.value}"),
        section(body),
        fields_section(
            [
                f"*Severity*\n{severity_label(incident.severity)}",
                f"*Status*\n{STATUS_LABELS[status]}",
                f"*Owner*\n{owner}",
                f"*Countries*\n{country_names(incident) or '—'}",
                f"*Opened by*\n{mention(incident.opened_by)} at {opened}",
                f"*Last change*\n{format_local_time(incident.updated_at, zone, now)}",
            ]
        ),
    ]
    if status is IncidentStatus.RESOLVED and resolution is not None:
        blocks.append(section(resolution.text))
    notes = [f"`/incident show {ref(incident)}` for the timeline · changes are in this thread"]
    if incident.source_permalink:
        notes.insert(0, f"<{incident.source_permalink}|The message it was opened from>")
    elif incident.source_channel:
        notes.insert(0, f"Opened from a message in <#{incident.source_channel}>")
    blocks.append(context(*notes))
    if with_buttons and status is not IncidentStatus.RESOLVED:
        value = button_value(incident)
        blocks.append(
            actions(
                button(BUTTON_LABELS[ACTION_OWN], ACTION_OWN, value),
                button(BUTTON_LABELS[ACTION_ESCALATE], ACTION_ESCALATE, value, style="danger"),
                button(BUTTON_LABELS[ACTION_RESOLVE], ACTION_RESOLVE, value, style="primary"),
                block_id=ACTIONS_BLOCK,
            )
        )
    owner_text = f", owner {mention(incident.owner)}" if incident.owner else ", no owner"
    text = f"{emoji} {ref(incident)} (sev{incident.severity} {name}, {status.value}{owner_text}): {title}"
    return text, blocks


def list_line(incident: Incident, zone: ZoneInfo, now: datetime) -> str:
    _, emoji = SEVERITIES[incident.severity]
    status = IncidentStatus(incident.status)
    who = f"owner {mention(incident.owner)}" if incident.owner else "*no owner*"
    if status is IncidentStatus.RESOLVED:
        who = "resolved"
    countries = country_names(incident, flags=False)
    where = f" · {countries}" if countries else ""
    age = _age(now - incident.opened_at)
    return (
        f"{emoji} *{ref(incident)}* sev{incident.severity} · {show(truncate(incident.title, 90))} · "
        f"{who}{where} · <#{incident.channel_id}> · opened {age} ago"
    )


def timeline_blocks(events: Sequence[IncidentEvent], zone: ZoneInfo, now: datetime) -> list[Block]:
    lines = [f"`{format_local_time(event.created_at, zone, now)}` {event.text}" for event in events]
    return text_sections(lines) if lines else [section("_Nothing recorded yet._")]


def card_reference(incident: Incident, link: str | None) -> str:
    """A link back to the card, or where it is when Slack has not given us its permalink yet."""
    if link and link.startswith("https://") and not any(ch in link for ch in "|<> "):
        return f"<{link}|Open the card of {ref(incident)}>"
    return f"The card is in <#{incident.channel_id}>"


def _age(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} days"
