"""Every slash command Liaison answers, in one place (the manifest lists the same ones)."""

from __future__ import annotations

from types import ModuleType

from commands import alert, arrivals, departures, deployment, digest, incident, liaison, pledge

COMMAND_MODULES: tuple[ModuleType, ...] = (
    arrivals,
    departures,
    pledge,
    deployment,
    alert,
    liaison,
    incident,
    digest,
)
COMMANDS: dict[str, ModuleType] = {module.COMMAND: module for module in COMMAND_MODULES}
