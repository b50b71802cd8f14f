"""Parsing pieces shared by the commands: countries, counts, capabilities and the optional tail."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from commands.blocks import escape
from commands.capabilities import Capability, CapabilityVocabulary
from commands.common import UsageError
from commands.countries import Country, UnknownCountry, resolve_country

# `\-` inside the class: `[+-−]` would be the range from `+` to `−`, which holds every letter.
_NUMBER_LIKE = re.compile(r"^[+\-−]?[\d.,]*\d[\d.,]*[a-zA-Z]*$|^[+\-−]?\d")
# Mathematical bold, double-struck, sans-serif and monospace digits: styled lookalikes, not a script.
_STYLED_DIGITS = range(0x1D7CE, 0x1D800)
NOTE_SEPARATORS = ("--", "—", "–")
MAX_LOCATION = 100
MAX_NOTE = 500


def quote(token: str) -> str:
    """User text inside an error message, escaped and visibly delimited."""
    return f"`{escape(token)[:80]}`"


def looks_like_number(token: str) -> bool:
    return bool(_NUMBER_LIKE.match(token))


def country_from(text: str) -> Country:
    try:
        return resolve_country(text)
    except UnknownCountry as unknown:
        names = [f"*{c.name}*" for c in unknown.suggestions]
        hint = (
            f"Did you mean {_or_list(names)}?"
            if names
            else "Use an English name or an ISO code: `poland`, `PL`, `POL`."
        )
        raise UsageError(f"I don't know the country {quote(text)}.", hint=hint) from None


def ascii_digits(token: str) -> str:
    """Digits as ASCII: `40`, or digits all of one script (`৪০` → `40`, `४०` → `40`, `４０` → `40`).

    Digits mixing scripts (`4٠`) or styled lookalikes (`𝟒𝟎`) are refused: what the reader sees and
    what would be recorded could differ. Anything that is not a digit is left as it is.
    """
    digits = [ch for ch in token if unicodedata.category(ch) == "Nd"]
    if all(ch.isascii() for ch in digits):
        return token
    zeros = {ord(ch) - unicodedata.decimal(ch) for ch in digits}
    if len(zeros) > 1 or any(ord(ch) in _STYLED_DIGITS for ch in digits):
        raise UsageError(
            f"{quote(token)} mixes digits of different scripts or uses lookalike digits.",
            hint="Type the number with the digits 0–9.",
        )
    return "".join(str(unicodedata.decimal(ch)) if ch in digits else ch for ch in token)


def count_from(token: str, *, maximum: int, allow_zero: bool = False, what: str = "count") -> int:
    cleaned = ascii_digits(token).replace("−", "-")
    if re.fullmatch(r"-\d+", cleaned):
        raise UsageError(f"The {what} can't be negative ({quote(token)}).", hint=_correction_hint(what))
    if not re.fullmatch(r"\+?[0-9]+", cleaned):
        raise UsageError(
            f"The {what} must be a whole number, like `40` — not {quote(token)}.",
            hint="No decimals, separators or units.",
        )
    value = int(cleaned)
    if value == 0 and not allow_zero:
        raise UsageError(f"The {what} must be at least 1.", hint=_correction_hint(what))
    if value > maximum:
        raise UsageError(
            f"{value:,} is more than one entry may record (at most {maximum:,}).",
            hint="Check for a typo; record a large contingent in several entries if it is real.",
        )
    return value


def _correction_hint(what: str) -> str:
    if what == "count":
        return "To correct a wrong entry, use `undo` within 15 minutes, or record the opposite movement."
    return "Use 0 to withdraw a pledge."


def capability_from(token: str, vocabulary: CapabilityVocabulary) -> Capability:
    capability = vocabulary.resolve(token)
    if capability is None:
        raise UsageError(
            f"I don't know the capability {quote(token)}.", hint=capability_hint(token, vocabulary)
        )
    return capability


def capability_hint(token: str, vocabulary: CapabilityVocabulary) -> str:
    close = vocabulary.suggest(token)
    known = ", ".join(f"`{c.key}`" for c in vocabulary)
    if close:
        return f"Did you mean {_or_list([f'`{c.key}`' for c in close])}? Capabilities: {known}."
    return f"Capabilities: {known}."


def _or_list(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


@dataclass(frozen=True)
class Tail:
    capability: Capability | None = None
    location: str | None = None
    note: str | None = None


def split_country_and_count(tokens: list[str], usage: str) -> tuple[Country, str, list[str]]:
    """`united kingdom 40 eod` → (United Kingdom, "40", ["eod"]). The country is everything before the count."""
    index = next((i for i, token in enumerate(tokens) if looks_like_number(token)), None)
    if index is None:
        country = _leading_country(tokens) or country_from(" ".join(tokens))
        raise UsageError(f"How many? Add a number after {country.name}.", hint=f"Usage: {usage}")
    if index == 0:
        raise UsageError("Name the country first, then the number.", hint=f"Usage: {usage}")
    return country_from(" ".join(tokens[:index])), tokens[index], tokens[index + 1 :]


def _leading_country(tokens: list[str]) -> Country | None:
    """The country the first words name (`poland k9` → Poland), the longest such prefix."""
    for end in range(len(tokens), 0, -1):
        try:
            return resolve_country(" ".join(tokens[:end]))
        except UnknownCountry:
            continue
    return None


def parse_tail(
    tokens: list[str], vocabulary: CapabilityVocabulary, usage: str, *, allow_location: bool = True
) -> Tail:
    """`[capability] [at <location>] [-- <note>]`, nothing else."""
    capability: Capability | None = None
    location: str | None = None
    note: str | None = None
    rest = list(tokens)
    note_at = next(
        (i for i, t in enumerate(rest) if t in NOTE_SEPARATORS or t.startswith(NOTE_SEPARATORS)), None
    )
    if note_at is not None:
        first = rest[note_at]
        for separator in NOTE_SEPARATORS:
            if first.startswith(separator):
                first = first[len(separator) :]
                break
        note_words = ([first] if first else []) + rest[note_at + 1 :]
        note = " ".join(note_words).strip() or None
        rest = rest[:note_at]
        if note is None:
            raise UsageError("The note after `--` is empty.", hint=f"Usage: {usage}")
        if len(note) > MAX_NOTE:
            raise UsageError(f"The note is too long ({len(note)} characters, at most {MAX_NOTE}).")
    if rest and rest[0].lower() not in ("at", "@"):
        # Two words first: `dog team` is one capability, although `dog` alone is an alias too.
        if len(rest) >= 2:
            capability = vocabulary.resolve(f"{rest[0]}-{rest[1]}")
            if capability is not None:
                rest = rest[1:]
        if capability is None:
            capability = vocabulary.resolve(rest[0])
        if capability is None:
            raise UsageError(
                f"I don't understand {quote(rest[0])}.",
                hint=f"After the number you can add a capability, `at <place>` and `-- <note>`. "
                f"{capability_hint(rest[0], vocabulary)} Usage: {usage}",
            )
        rest = rest[1:]
    if rest:
        if not allow_location or rest[0].lower() not in ("at", "@"):
            raise UsageError(f"I don't understand {quote(' '.join(rest))}.", hint=f"Usage: {usage}")
        location = " ".join(rest[1:]).strip()
        if not location:
            raise UsageError("Say where after `at`, e.g. `at CDG`.", hint=f"Usage: {usage}")
        if len(location) > MAX_LOCATION:
            raise UsageError(f"The place is too long ({len(location)} characters, at most {MAX_LOCATION}).")
    return Tail(capability=capability, location=location, note=note)
