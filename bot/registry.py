"""Every slash command Liaison answers, in one place (the manifest lists the same ones)."""

from __future__ import annotations

from types import ModuleType

from commands import arrivals, departures, deployment, pledge

COMMAND_MODULES: tuple[ModuleType, ...] = (arrivals, departures, pledge, deployment)
COMMANDS: dict[str, ModuleType] = {module.COMMAND: module for module in COMMAND_MODULES}
