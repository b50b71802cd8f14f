"""Open incidents as digests and the Home tab show them.

Incidents are tracked by another module; until it is wired in (`CommandConfig.incidents`), digests
and the Home tab have no incidents section at all rather than an empty or made-up one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlmodel import Session

from storage.incidents import open_incidents

SEVERITY_ORDER = ("sev1", "sev2", "sev3", "sev4")


@dataclass(frozen=True)
class IncidentSummary:
    ref: str  # "INC-42"
    title: str  # user text: escape when rendering
    severity: str  # "sev1" (most severe) … "sev4"
    status: str = "open"
    countries: tuple[str, ...] = ()  # ISO alpha-2 codes

    def rank(self) -> tuple[int, str]:
        order = (
            SEVERITY_ORDER.index(self.severity) if self.severity in SEVERITY_ORDER else len(SEVERITY_ORDER)
        )
        return order, self.ref


IncidentProvider = Callable[[Session], Sequence[IncidentSummary]]


def tracked_incidents(session: Session) -> list[IncidentSummary]:
    """The incidents Liaison tracks (`/incident`) that are not resolved, most severe first."""
    return [
        IncidentSummary(
            ref=f"INC-{incident.id}",
            title=incident.title,
            severity=f"sev{incident.severity}",
            status=str(incident.status),
            countries=tuple(code for code in incident.countries.split(",") if code),
        )
        for incident in open_incidents(session)
    ]
