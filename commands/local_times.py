"""Wall-clock times of day in the configured zone: parsing, and the UTC moment they fall on a given day.

A daily digest at 07:00 stays at 07:00 local across daylight-saving changes because its due moment is
computed afresh for each local date (never as "24 hours after the last one").
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_TIME = re.compile(r"^(\d{1,2})(?:[:hH.](\d{2})?)?$")
GAP_SEARCH_DAYS = 366


class BadTime(ValueError):
    """The text is not a time of day; the message says what is accepted."""


def parse_time_of_day(text: str) -> time:
    """`07:00`, `7:00`, `7h30`, `07h`, `18.45` → a time; anything else raises BadTime."""
    match = _TIME.match(text.strip())
    if not match:
        raise BadTime(f"`{text}` is not a time of day; write it as HH:MM, e.g. `07:00` or `18:30`.")
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if hour > 23 or minute > 59:
        raise BadTime(f"`{text}` is not a time of day (hours 00–23, minutes 00–59).")
    return time(hour, minute)


def format_time_of_day(at: time) -> str:
    return f"{at.hour:02d}:{at.minute:02d}"


def exists_on(day: date, at: time, zone: ZoneInfo) -> bool:
    """False for a wall time skipped when clocks go forward (02:30 on the spring change in Paris)."""
    local = datetime.combine(day, at, tzinfo=zone)
    round_trip = local.astimezone(UTC).astimezone(zone)
    return (round_trip.hour, round_trip.minute) == (at.hour, at.minute)


def first_missing_day(at: time, zone: ZoneInfo, start: date, days: int = GAP_SEARCH_DAYS) -> date | None:
    """The first day from `start` on which `at` does not exist in `zone`, if any within `days`."""
    for offset in range(days):
        day = start + timedelta(days=offset)
        if not exists_on(day, at, zone):
            return day
    return None


def due_moment(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of `at` on local `day`.

    An ambiguous time (clocks going back) is its first occurrence; a skipped time (clocks going
    forward; refused when subscribing, but zone rules can change) is moved to the end of the gap.
    """
    local = datetime.combine(day, at, tzinfo=zone).replace(fold=0)
    if exists_on(day, at, zone):
        return local.astimezone(UTC)
    # In a gap: the first minute after the clocks jumped (02:30 on the spring change → 03:00).
    moment = local.replace(fold=1).astimezone(UTC)  # reads the time with the later offset: earlier
    latest = local.astimezone(UTC)
    while moment < latest and moment.astimezone(zone).time() < at:
        moment += timedelta(minutes=1)
    return moment
