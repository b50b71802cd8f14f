"""The alert-level scale: ordered, configurable, with a label, an emoji and a colour per level."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_KEY = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class AlertLevel:
    key: str
    label: str
    emoji: str
    colour: str
    rank: int


DEFAULT_SPEC = (
    "vigilance=Vigilance:large_yellow_circle:#f2c744;"
    "renforcee=Sécurité renforcée – risque attentat:large_orange_circle:#e8912d;"
    "urgence=Urgence attentat:red_circle:#d72b3f"
)


class AlertScale:
    def __init__(self, levels: list[AlertLevel]) -> None:
        if not levels:
            raise ValueError("the alert scale needs at least one level")
        keys = [level.key for level in levels]
        if len(set(keys)) != len(keys):
            raise ValueError(f"alert level keys must be unique: {keys}")
        self._levels = levels
        self._by_key = {level.key: level for level in levels}

    @classmethod
    def from_spec(cls, spec: str) -> AlertScale:
        """`key=Label:emoji:#colour;...`, lowest first (emoji and colour optional)."""
        levels: list[AlertLevel] = []
        for rank, entry in enumerate(part.strip() for part in spec.split(";") if part.strip()):
            key, sep, rest = entry.partition("=")
            key = key.strip()
            if not sep or not _KEY.match(key):
                raise ValueError(
                    f"alert level {entry!r}: expected key=Label[:emoji[:#colour]] with a lower-case key"
                )
            label, _, tail = rest.partition(":")
            emoji, _, colour = tail.partition(":")
            if not label.strip():
                raise ValueError(f"alert level {key!r} needs a label")
            levels.append(
                AlertLevel(
                    key, label.strip(), emoji.strip() or "rotating_light", colour.strip() or "#888888", rank
                )
            )
        return cls(levels)

    def __iter__(self) -> Iterator[AlertLevel]:
        return iter(self._levels)

    @property
    def lowest(self) -> AlertLevel:
        return self._levels[0]

    def get(self, key: str) -> AlertLevel | None:
        return self._by_key.get(key.strip().lower())

    def __getitem__(self, key: str) -> AlertLevel:
        level = self.get(key)
        if level is None:
            # A level removed from the configuration still has notices in the database.
            return AlertLevel(key, key, "grey_question", "#888888", -1)
        return level

    def keys(self) -> list[str]:
        return [level.key for level in self._levels]


def default_scale() -> AlertScale:
    return AlertScale.from_spec(DEFAULT_SPEC)
