"""The capability vocabulary: what a contingent's personnel do (``dog-team``, ``eod`` ...).

A small, configurable set of keys with aliases, so pledges and movements are counted per
capability instead of per free-text description.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_KEY = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
_SEPARATORS = re.compile(r"[\s_-]+")
_SPEC_FORMAT = "key=label[:alias|alias...]"


@dataclass(frozen=True)
class Capability:
    key: str  # "dog-team"
    label: str  # "Dog teams (detection)"
    aliases: tuple[str, ...] = ()


DEFAULT_CAPABILITIES: tuple[Capability, ...] = (
    Capability("public-order", "Public order", ("crowd-control", "riot-control")),
    Capability("patrol", "Patrol", ("patrols",)),
    Capability(
        "dog-team", "Dog teams (detection)", ("dog", "dogs", "dog-teams", "k9", "canine", "sniffer-dogs")
    ),
    Capability("eod", "Explosives detection and disposal (EOD)", ("explosives", "bomb-disposal", "ied")),
    Capability("ct", "Counter-terrorism", ("counter-terrorism", "counterterrorism", "swat")),
    Capability("mounted", "Mounted units", ("horse", "horses", "cavalry")),
    Capability("medical", "Medical", ("medic", "medics")),
    Capability("liaison", "Liaison officers", ("lo",)),
)


def _normalize_token(token: str) -> str:
    """Lookup form of a token: lower case, runs of spaces/underscores/hyphens become one hyphen."""
    return _SEPARATORS.sub("-", token.strip().casefold()).strip("-")


def _check_key(capability: Capability) -> None:
    if not _KEY.match(capability.key):
        raise ValueError(
            f"capability key {capability.key!r} must be lower case letters, digits and inner hyphens"
        )
    if not capability.label.strip():
        raise ValueError(f"capability {capability.key!r} needs a non-empty label")


def _alias_token(capability: Capability, alias: str) -> str:
    token = _normalize_token(alias)
    if not _KEY.match(token):
        raise ValueError(
            f"alias {alias!r} of capability {capability.key!r} must be letters, digits and hyphens"
        )
    return token


def _build_lookup(capabilities: tuple[Capability, ...]) -> dict[str, Capability]:
    lookup: dict[str, Capability] = {}
    for capability in capabilities:
        _check_key(capability)
        if capability.key in lookup:
            raise ValueError(f"capability key {capability.key!r} is defined twice")
        lookup[capability.key] = capability
    for capability in capabilities:
        for alias in capability.aliases:
            token = _alias_token(capability, alias)
            owner = lookup.setdefault(token, capability)
            if owner is not capability:
                raise ValueError(
                    f"alias {alias!r} of capability {capability.key!r} clashes with capability {owner.key!r}"
                )
    return lookup


class CapabilityVocabulary:
    def __init__(self, capabilities: Iterable[Capability]) -> None:
        self._capabilities = tuple(capabilities)
        if not self._capabilities:
            raise ValueError("the capability vocabulary needs at least one capability")
        self._lookup = _build_lookup(self._capabilities)
        self._by_key = {c.key: c for c in self._capabilities}

    def resolve(self, token: str) -> Capability | None:
        """The capability named by ``token`` (key or alias, any case), or ``None``."""
        return self._lookup.get(_normalize_token(token))

    def suggest(self, token: str, limit: int = 3) -> list[Capability]:
        """Closest capabilities to ``token``, best first: prefix matches, then ``difflib``."""
        wanted = _normalize_token(token)
        if not wanted or limit <= 0:
            return []
        names = list(self._lookup)
        prefixed = sorted((n for n in names if n.startswith(wanted)), key=lambda n: (len(n), n))
        close = difflib.get_close_matches(wanted, names, n=len(names), cutoff=0.6)
        found: list[Capability] = []
        for name in [*prefixed, *close]:
            capability = self._lookup[name]
            if capability not in found:
                found.append(capability)
        return found[:limit]

    def get(self, key: str) -> Capability:
        """Capability by its exact key; ``KeyError`` if there is none."""
        try:
            return self._by_key[key]
        except KeyError:
            raise KeyError(f"no capability with key {key!r}") from None

    def __iter__(self) -> Iterator[Capability]:
        return iter(self._capabilities)

    def __len__(self) -> int:
        return len(self._capabilities)

    def __repr__(self) -> str:
        return f"CapabilityVocabulary({[c.key for c in self._capabilities]!r})"

    @classmethod
    def from_spec(cls, spec: str) -> CapabilityVocabulary:
        """Parse ``key=label[:alias|alias...]`` entries separated by ``;`` (an environment variable).

        Example: ``dog-team=Dog teams:k9|dogs;eod=Explosives (EOD):bomb|ied;patrol=Patrol``.
        The first ``:`` ends the label, so labels cannot contain one.
        """
        entries = [entry.strip() for entry in spec.split(";")]
        capabilities = [_parse_entry(entry, n) for n, entry in enumerate(entries, start=1) if entry]
        if not capabilities:
            raise ValueError(f"capability spec is empty; expected {_SPEC_FORMAT!r} entries joined by ';'")
        return cls(capabilities)


def _parse_entry(entry: str, position: int) -> Capability:
    where = f"capability spec entry {position} ({entry!r})"
    key, equals, rest = entry.partition("=")
    if not equals:
        raise ValueError(f"{where} has no '='; expected {_SPEC_FORMAT!r}")
    label, _, alias_text = rest.partition(":")
    key, label = key.strip(), label.strip()
    if not key:
        raise ValueError(f"{where} has no key before '='")
    if not label:
        raise ValueError(f"{where} has no label after '='")
    aliases = tuple(alias.strip() for alias in alias_text.split("|")) if alias_text.strip() else ()
    if any(not alias for alias in aliases):
        raise ValueError(f"{where} has an empty alias; separate aliases with a single '|'")
    return Capability(key=key, label=label, aliases=aliases)


def default_vocabulary() -> CapabilityVocabulary:
    return CapabilityVocabulary(DEFAULT_CAPABILITIES)
