"""Resolve what a liaison officer types into an ISO 3166 country.

Everything is looked up in an index built once from ``pycountry`` plus a small table of
aliases: exact input (after normalisation) is a single dict hit, and only a miss pays for
the fuzzy ``difflib`` search that produces "did you mean" suggestions.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import pycountry


@dataclass(frozen=True)
class Country:
    code: str  # ISO alpha-2, e.g. "PL"
    alpha3: str  # "POL"
    name: str  # short English display name, e.g. "South Korea"


class UnknownCountry(ValueError):
    def __init__(self, query: str, suggestions: Iterable[Country] = ()) -> None:
        self.query = query
        self.suggestions: tuple[Country, ...] = tuple(suggestions)
        super().__init__(_unknown_message(query, self.suggestions))


def _unknown_message(query: str, suggestions: tuple[Country, ...]) -> str:
    shown = query.strip()
    if not shown:
        return "No country given."
    message = f'Unknown country "{shown}".'
    if suggestions:
        message += f" Did you mean {', '.join(c.name for c in suggestions)}?"
    return message


# Kosovo is not in ISO 3166-1, so pycountry does not know it. It still contributes police
# officers in Europe, so it is supported under the user-assigned code XK (used by the EU,
# the European Commission and most registries) with alpha-3 XKX (the EU/IMF convention).
_KOSOVO = Country(code="XK", alpha3="XKX", name="Kosovo")

# Display names for entries whose ISO name is awkward ("Korea, Republic of") and that have
# no pycountry ``common_name``. Entries with a common_name use it instead.
_DISPLAY_OVERRIDES: Mapping[str, str] = {
    "BN": "Brunei",
    "BQ": "Caribbean Netherlands",
    "CC": "Cocos Islands",
    "CD": "DR Congo",
    "FK": "Falkland Islands",
    "FM": "Micronesia",
    "MF": "Saint Martin",
    "PS": "Palestine",
    "RU": "Russia",
    "SH": "Saint Helena",
    "SX": "Sint Maarten",
    "VA": "Vatican City",
    "VG": "British Virgin Islands",
    "VI": "US Virgin Islands",
}

# What people actually type, mapped to alpha-2. The UK's constituent nations map to GB
# because contingents are pledged and counted per sovereign state.
_ALIASES: Mapping[str, str] = {
    "uk": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "america": "US",
    "united states of america": "US",
    "czech republic": "CZ",
    "czech": "CZ",
    "russia": "RU",
    "korea": "KR",
    "south korea": "KR",
    "republic of korea": "KR",
    "north korea": "KP",
    "dprk": "KP",
    "holland": "NL",
    "ivory coast": "CI",
    "turkey": "TR",
    "vietnam": "VN",
    "iran": "IR",
    "syria": "SY",
    "laos": "LA",
    "moldova": "MD",
    "bolivia": "BO",
    "venezuela": "VE",
    "tanzania": "TZ",
    "taiwan": "TW",
    "macedonia": "MK",
    "fyrom": "MK",
    "vatican": "VA",
    "holy see": "VA",
    "vatican city state": "VA",
    "uae": "AE",
    "emirates": "AE",
    "drc": "CD",
    "dr congo": "CD",
    "democratic republic of the congo": "CD",
    "congo kinshasa": "CD",
    "congo brazzaville": "CG",
    "republic of congo": "CG",
    "kosovo": "XK",
    "swaziland": "SZ",
    "burma": "MM",
    "cape verde": "CV",
    "east timor": "TL",
    "bosnia": "BA",
    "palestine": "PS",
}

_APOSTROPHES = str.maketrans({c: "'" for c in "\u2018\u2019\u02bc\u0060\u00b4\u2032"})
_NON_WORD = re.compile(r"[^a-z0-9]+")
_SLACK_FLAG = re.compile(r"^:?flag-([a-z]{2}):?$")
_REGIONAL_INDICATOR_A = 0x1F1E6


def _fold(text: str) -> str:
    """Lowercase, drop accents and unify apostrophes: "Côte d’Ivoire" -> "cote d'ivoire"."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    # Combining marks go, and so do invisible format characters (zero-width, bidi controls).
    return "".join(
        ch for ch in decomposed if not unicodedata.combining(ch) and unicodedata.category(ch) != "Cf"
    ).casefold()


def _normalize(text: str) -> str:
    """Reduce a country name to its lookup key; names and user input go through this alike."""
    folded = _fold(text).replace("&", " and ")
    # Apostrophes and dots join ("d'ivoire" -> "divoire", "u.s.a." -> "usa"); any other
    # punctuation separates words ("guinea-bissau" -> "guinea bissau").
    folded = folded.replace("'", "").replace(".", "")
    words = _NON_WORD.sub(" ", folded).split()
    if words and words[0] == "the":
        words = words[1:]
    if len(words) > 1:  # a lone "st" is São Tomé's code, not "saint"
        words = ["saint" if word == "st" else word for word in words]
    return " ".join(words)


def _flag_code(text: str) -> str | None:
    """Alpha-2 code of a flag emoji ("🇵🇱") or Slack flag shortcode (":flag-pl:"), if it is one."""
    stripped = text.strip()
    if len(stripped) == 2 and all(
        _REGIONAL_INDICATOR_A <= ord(ch) < _REGIONAL_INDICATOR_A + 26 for ch in stripped
    ):
        return "".join(chr(ord(ch) - _REGIONAL_INDICATOR_A + ord("A")) for ch in stripped)
    match = _SLACK_FLAG.match(stripped.casefold())
    return match.group(1).upper() if match else None


def _display_name(record: Any) -> str:
    code = str(record.alpha_2)
    common = getattr(record, "common_name", None)
    if common:
        return str(common)
    return _DISPLAY_OVERRIDES.get(code, str(record.name))


@dataclass(frozen=True)
class _Index:
    by_code: Mapping[str, Country]  # alpha-2 and alpha-3, upper case
    by_key: Mapping[str, Country]  # every normalised name, alias and code
    fuzzy_keys: tuple[str, ...]  # names and aliases only: codes make poor fuzzy targets
    ordered: tuple[Country, ...]


def _names_of(record: Any) -> list[str]:
    names = [_display_name(record), str(record.name)]
    for attribute in ("common_name", "official_name"):
        value = getattr(record, attribute, None)
        if value:
            names.append(str(value))
    return names


@cache
def _index() -> _Index:
    countries: list[Country] = []
    names: list[tuple[str, Country]] = []
    for record in pycountry.countries:
        country = Country(code=str(record.alpha_2), alpha3=str(record.alpha_3), name=_display_name(record))
        countries.append(country)
        names.extend((name, country) for name in _names_of(record))
    if not any(c.code == _KOSOVO.code for c in countries):
        countries.append(_KOSOVO)
        names.append((_KOSOVO.name, _KOSOVO))

    by_code = {code: c for c in countries for code in (c.code, c.alpha3)}
    by_key: dict[str, Country] = {}
    # First writer wins, so codes and hand-written aliases take precedence over pycountry names.
    for code, country in by_code.items():
        by_key.setdefault(code.lower(), country)
    for alias, code in _ALIASES.items():
        by_key.setdefault(_normalize(alias), by_code[code])
    for name, country in names:
        key = _normalize(name)
        if key:
            by_key.setdefault(key, country)

    ordered = tuple(sorted(countries, key=lambda c: _normalize(c.name)))
    code_keys = {code.lower() for code in by_code} - {_normalize(alias) for alias in _ALIASES}
    fuzzy_keys = tuple(key for key in by_key if key not in code_keys)
    return _Index(by_code=by_code, by_key=by_key, fuzzy_keys=fuzzy_keys, ordered=ordered)


def _has_letters(key: str) -> bool:
    return any(ch.isalpha() for ch in key)


def resolve_country(text: str) -> Country:
    """The country meant by ``text`` (code, name, alias, flag), or raise :class:`UnknownCountry`."""
    index = _index()
    flag_code = _flag_code(text)
    if flag_code is not None and flag_code in index.by_code:
        return index.by_code[flag_code]
    key = _normalize(text)
    if not _has_letters(key):
        raise UnknownCountry(text)
    found = index.by_key.get(key)
    if found is None:
        raise UnknownCountry(text, suggest_countries(text))
    return found


def country_by_code(code: str) -> Country:
    """Country by ISO alpha-2 or alpha-3 code, case-insensitive; ``KeyError`` if there is none."""
    try:
        return _index().by_code[code.strip().upper()]
    except KeyError:
        raise KeyError(f"no country with code {code!r}") from None


def _prefix_matches(key: str, keys: Iterable[str]) -> list[str]:
    # Shortest completion first: "switz" should offer "switzerland" before longer names.
    return sorted((k for k in keys if k.startswith(key)), key=lambda k: (len(k), k))


def _close_matches(key: str, keys: Iterable[str], cutoff: float = 0.6) -> list[str]:
    matcher = difflib.SequenceMatcher()
    matcher.set_seq2(key)
    scored: list[tuple[float, str]] = []
    for candidate in keys:
        matcher.set_seq1(candidate)
        if matcher.real_quick_ratio() >= cutoff and matcher.quick_ratio() >= cutoff:
            ratio = matcher.ratio()
            if ratio >= cutoff:
                scored.append((ratio, candidate))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [candidate for _, candidate in scored]


def suggest_countries(text: str, limit: int = 3) -> list[Country]:
    """Closest countries to ``text``, best first, one entry per country, at most ``limit``."""
    key = _normalize(text)
    if limit <= 0 or not _has_letters(key):
        return []
    index = _index()
    prefixed = _prefix_matches(key, index.fuzzy_keys) if len(key) >= 2 else []
    found: list[Country] = []
    for candidate in [*prefixed, *_close_matches(key, index.fuzzy_keys)]:
        country = index.by_key[candidate]
        if country not in found:
            found.append(country)
            if len(found) == limit:
                break
    return found


def flag(country: Country) -> str:
    """The country's flag as a Slack emoji shortcode."""
    return f":flag-{country.code.lower()}:"


def all_countries() -> list[Country]:
    """Every known country, sorted by display name (accents ignored, so Åland sorts under A)."""
    return list(_index().ordered)
