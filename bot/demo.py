"""A realistic sample dataset, so a new user sees a meaningful board at once.

46 contributing countries pledging a little over 2,000 personnel across the capability vocabulary,
then four days of arrivals (some contingents complete, some half-way, a few not there yet) and a
handful of rotations. Every row is what the commands themselves would have written, including the
command a liaison officer would have typed, so the audit trail of the demo reads like a real one.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session

from commands.capabilities import DEFAULT_CAPABILITIES
from storage.models import Movement, MovementKind, Pledge

DEMO_CHANNEL = "CDEMO"
DEMO_OPS_USER = "UDEMO0001"  # the operations centre officer who recorded the pledges
ARRIVAL_WINDOW = timedelta(days=4)
PLEDGED_MIN, PLEDGED_MAX = 2_001, 2_300  # "more than 2,000 police officers"
_LOCAL = ZoneInfo("Europe/Paris")
_FIRST_HOUR, _LAST_HOUR = 6, 22  # local hours at which contingents plausibly land and get counted

CAPABILITY_KEYS: tuple[str, ...] = tuple(c.key for c in DEFAULT_CAPABILITIES)

_AIR = ("CDG", "ORY")
_NORTH = ("Gare du Nord", "Lille-Europe", "CDG")
_EAST = ("Gare de l'Est", "Strasbourg", "CDG")
_SOUTH_EAST = ("Gare de Lyon", "Lyon Part-Dieu", "Marseille-Provence", "Nice Côte d'Azur")
_SOUTH_WEST = ("ORY", "Bordeaux-Mérignac", "Marseille-Provence")


@dataclass(frozen=True)
class DemoCountry:
    code: str  # ISO alpha-2
    typed: str  # what a liaison officer types for it
    headcount: int  # approximate total pledge, before the seed's jitter
    specialties: tuple[str, ...]  # capabilities beyond public order, patrol and liaison
    arrive_at: tuple[str, ...]  # where its personnel come in


# Exactly 46 contributing countries: a few large contingents, many small ones.
COUNTRIES: tuple[DemoCountry, ...] = (
    DemoCountry("ES", "spain", 175, ("dog-team", "eod", "mounted", "medical"), _SOUTH_WEST),
    DemoCountry("DE", "germany", 165, ("dog-team", "eod", "ct", "medical"), _EAST),
    DemoCountry("IT", "italy", 155, ("dog-team", "eod", "mounted", "medical"), _SOUTH_EAST),
    DemoCountry("PL", "poland", 140, ("dog-team", "eod", "medical"), _AIR),
    DemoCountry("GB", "uk", 95, ("eod", "ct", "mounted"), _NORTH),
    DemoCountry("US", "usa", 85, ("ct", "eod", "dog-team"), _AIR),
    DemoCountry("BE", "belgium", 80, ("dog-team", "mounted"), _NORTH),
    DemoCountry("NL", "netherlands", 75, ("dog-team", "mounted"), _NORTH),
    DemoCountry("PT", "portugal", 65, ("dog-team",), _SOUTH_WEST),
    DemoCountry("CH", "switzerland", 60, ("eod", "dog-team"), _SOUTH_EAST),
    DemoCountry("MA", "morocco", 60, ("dog-team", "ct"), _SOUTH_WEST),
    DemoCountry("QA", "qatar", 55, ("ct", "dog-team"), _AIR),
    DemoCountry("AT", "austria", 50, ("eod", "ct"), _EAST),
    DemoCountry("CZ", "czechia", 50, ("dog-team",), _EAST),
    DemoCountry("RO", "romania", 50, ("dog-team",), _AIR),
    DemoCountry("GR", "greece", 45, ("eod",), _AIR),
    DemoCountry("AE", "uae", 45, ("ct", "dog-team"), _AIR),
    DemoCountry("SE", "sweden", 40, ("eod",), _AIR),
    DemoCountry("CA", "canada", 40, ("mounted",), _AIR),
    DemoCountry("KR", "south korea", 35, ("eod",), _AIR),
    DemoCountry("BR", "brazil", 35, ("patrol",), _AIR),
    DemoCountry("HU", "hungary", 35, ("dog-team",), _AIR),
    DemoCountry("JP", "japan", 30, ("eod",), _AIR),
    DemoCountry("IE", "ireland", 30, (), _AIR),
    DemoCountry("DK", "denmark", 30, ("dog-team",), _NORTH),
    DemoCountry("NO", "norway", 30, ("eod",), _AIR),
    DemoCountry("BG", "bulgaria", 30, (), _AIR),
    DemoCountry("SN", "senegal", 30, (), _AIR),
    DemoCountry("FI", "finland", 25, ("dog-team",), _AIR),
    DemoCountry("SK", "slovakia", 25, (), _EAST),
    DemoCountry("HR", "croatia", 25, (), _AIR),
    DemoCountry("AU", "australia", 25, ("ct",), _AIR),
    DemoCountry("SI", "slovenia", 15, (), _SOUTH_EAST),
    DemoCountry("LU", "luxembourg", 15, (), _EAST),
    DemoCountry("LT", "lithuania", 15, (), _AIR),
    DemoCountry("MX", "mexico", 15, (), _AIR),
    DemoCountry("TN", "tunisia", 15, (), _SOUTH_EAST),
    DemoCountry("MC", "monaco", 15, (), _SOUTH_EAST),
    DemoCountry("SG", "singapore", 12, ("ct",), _AIR),
    DemoCountry("EE", "estonia", 10, (), _AIR),
    DemoCountry("LV", "latvia", 10, (), _AIR),
    DemoCountry("CY", "cyprus", 8, (), _AIR),
    DemoCountry("NZ", "new zealand", 8, (), _AIR),
    DemoCountry("MT", "malta", 6, (), _AIR),
    DemoCountry("IS", "iceland", 5, (), _AIR),
    DemoCountry("AD", "andorra", 5, (), _SOUTH_WEST),
)

_ARRIVAL_NOTES = (
    "by road, own vehicles",
    "accreditation pending for 2",
    "dogs checked at the border, all fit",
    "equipment held at customs, release expected tomorrow",
    "team leader contact passed to ops",
    "quartered at the barracks in Vincennes",
    "late flight, briefing moved to 08:00",
    "radios issued on arrival",
)
_DEPARTURE_NOTES = (
    "rotation, relief arriving in two days",
    "rotation",
    "end of first shift block",
    "rotation, flight home from CDG tonight",
)


@dataclass(frozen=True)
class DemoSummary:
    countries: int
    pledged: int
    arrived: int
    departed: int
    movements: int


class DemoDataExists(RuntimeError):
    """The database already holds pledges or movements; the demo would mix with real data."""

    def __init__(self, pledges: int, movements: int) -> None:
        self.pledges = pledges
        self.movements = movements
        super().__init__(
            f"The database already holds {pledges:,} pledge(s) and {movements:,} movement(s); "
            "the demo data was not loaded so it cannot mix with them. "
            "Use --force to add the demo on top anyway."
        )


def load_demo_data(session: Session, now: datetime, *, seed: int = 2024, force: bool = False) -> DemoSummary:
    """Add the demo pledges and movements to ``session`` (the caller commits).

    Deterministic for a given ``seed`` and ``now``; no movement is later than ``now``.
    Raises :class:`DemoDataExists` if any pledge or movement exists, unless ``force``.
    """
    if now.tzinfo is None:
        raise ValueError("load_demo_data needs a timezone-aware `now`")
    now = now.astimezone(UTC)
    if not force:
        pledges = int(session.execute(select(func.count()).select_from(Pledge)).scalar_one())
        movements = int(session.execute(select(func.count()).select_from(Movement)).scalar_one())
        if pledges or movements:
            raise DemoDataExists(pledges, movements)

    rng = random.Random(seed)  # noqa: S311 - sample data, reproducible on purpose
    pledge_plan = _plan_pledges(rng)
    pledge_rows = _pledge_rows(rng, pledge_plan, now)
    movement_rows = _movement_rows(rng, pledge_plan, now)
    pledge_rows.sort(key=lambda p: p.created_at)  # ids grow with time, as if typed one by one
    movement_rows.sort(key=lambda m: m.created_at)
    session.add_all(pledge_rows)
    session.add_all(movement_rows)
    session.flush()

    arrived = sum(m.count for m in movement_rows if m.kind == MovementKind.ARRIVAL)
    departed = sum(m.count for m in movement_rows if m.kind == MovementKind.DEPARTURE)
    return DemoSummary(
        countries=len(pledge_plan),
        pledged=sum(sum(by_capability.values()) for by_capability in pledge_plan.values()),
        arrived=arrived,
        departed=departed,
        movements=len(movement_rows),
    )


# --- pledges -----------------------------------------------------------------------------------

PledgePlan = dict[str, dict[str, int]]  # country code -> capability -> headcount, in COUNTRIES order


def _plan_pledges(rng: random.Random) -> PledgePlan:
    jittered = [c.headcount * rng.uniform(0.9, 1.1) for c in COUNTRIES]
    scale = rng.randint(2_080, 2_220) / sum(jittered)
    totals = [max(4, round(size * scale)) for size in jittered]
    assert PLEDGED_MIN <= sum(totals) <= PLEDGED_MAX
    return {
        country.code: _split(rng, country, total) for country, total in zip(COUNTRIES, totals, strict=True)
    }


def _split(rng: random.Random, country: DemoCountry, total: int) -> dict[str, int]:
    """Spread one country's headcount over capabilities; the parts add up to ``total`` exactly."""
    parts: dict[str, int] = {"liaison": max(1, min(4, total // 30))}
    remaining = total - parts["liaison"]
    for key in country.specialties:
        if key == "patrol":
            continue  # a country whose whole contingent patrols; handled below
        share = 0.04 if key == "medical" else rng.uniform(0.07, 0.16)
        size = max(2, round(total * share))
        if size < remaining - 2:
            parts[key] = size
            remaining -= size
    if "patrol" in country.specialties or total < 20:
        parts["patrol"] = remaining
    else:
        public_order = round(remaining * rng.uniform(0.5, 0.7))
        parts["public-order"] = public_order
        parts["patrol"] = remaining - public_order
    ordered = {key: parts[key] for key in CAPABILITY_KEYS if parts.get(key, 0) > 0}
    assert sum(ordered.values()) == total
    return ordered


def _pledge_rows(rng: random.Random, plan: PledgePlan, now: datetime) -> list[Pledge]:
    rows: list[Pledge] = []
    for country in COUNTRIES:
        day = now - timedelta(days=rng.randint(12, 30))
        when = _local_time(day, rng.randint(9, 17), rng.randint(0, 59))
        for key, headcount in plan[country.code].items():
            when += timedelta(seconds=rng.randint(20, 90))
            rows.append(
                Pledge(
                    country=country.code,
                    capability=key,
                    headcount=headcount,
                    recorded_by=DEMO_OPS_USER,
                    channel_id=DEMO_CHANNEL,
                    command_text=f"/pledge {country.typed} {headcount} {key}",
                    created_at=when,
                )
            )
    return rows


# --- movements ---------------------------------------------------------------------------------


def _fill_targets(rng: random.Random) -> dict[str, float]:
    """How far along each country is: a few not there yet, some half-way, many complete."""
    codes = [c.code for c in COUNTRIES]
    rng.shuffle(codes)
    targets: dict[str, float] = {}
    for position, code in enumerate(codes):
        if position < 4:
            targets[code] = 0.0
        elif position < 18:
            targets[code] = 1.0
        elif position < 32:
            targets[code] = rng.uniform(0.6, 0.95)
        else:
            targets[code] = rng.uniform(0.3, 0.6)
    return targets


def _movement_rows(rng: random.Random, plan: PledgePlan, now: datetime) -> list[Movement]:
    targets = _fill_targets(rng)
    rows: list[Movement] = []
    last_arrival: dict[tuple[str, str], datetime] = {}
    for index, country in enumerate(COUNTRIES):
        fill = targets[country.code]
        if fill <= 0:
            continue
        user = f"UDEMO{100 + index:04d}"  # the country's liaison officer
        for key, pledged in plan[country.code].items():
            wanted = (
                pledged if fill >= 1 or key == "liaison" else round(pledged * fill * rng.uniform(0.8, 1.1))
            )
            wanted = min(wanted, pledged)
            if wanted <= 0:
                continue
            batches = _batches(rng, wanted)
            # Liaison officers tend to come early, to receive their contingent: earliest of three draws.
            draws = 3 if key == "liaison" else 1
            times = sorted(min(_arrival_time(rng, now) for _ in range(draws)) for _ in batches)
            for count, when in zip(batches, times, strict=True):
                location = rng.choice(country.arrive_at) if rng.random() < 0.8 else None
                note = rng.choice(_ARRIVAL_NOTES) if rng.random() < 0.15 else None
                rows.append(_movement(MovementKind.ARRIVAL, country, key, count, location, note, user, when))
            last_arrival[(country.code, key)] = max(times)
    rows.extend(_departures(rng, rows, last_arrival, now))
    return rows


def _batches(rng: random.Random, wanted: int) -> list[int]:
    """Split an arrival into one to three groups (a large contingent does not land in one plane)."""
    count = 1 if wanted < 12 else rng.randint(1, 2) if wanted < 40 else rng.randint(2, 3)
    cuts = sorted(rng.sample(range(1, wanted), count - 1)) if count > 1 else []
    bounds = [0, *cuts, wanted]
    return [b - a for a, b in itertools.pairwise(bounds)]


def _departures(
    rng: random.Random,
    arrivals: Sequence[Movement],
    last_arrival: dict[tuple[str, str], datetime],
    now: datetime,
) -> list[Movement]:
    """A handful of rotations, each after the last arrival of its bucket and within what is on duty."""
    on_duty: dict[tuple[str, str], int] = {}
    for movement in arrivals:
        assert movement.capability is not None
        bucket = (movement.country, movement.capability)
        on_duty[bucket] = on_duty.get(bucket, 0) + movement.count
    candidates = sorted(
        bucket
        for bucket, count in on_duty.items()
        if count >= 12
        and bucket[1] in ("public-order", "patrol", "dog-team")
        and now - last_arrival[bucket] > timedelta(hours=2)
    )
    by_code = {c.code: (i, c) for i, c in enumerate(COUNTRIES)}
    rows: list[Movement] = []
    for code, key in rng.sample(candidates, min(6, len(candidates))):
        index, country = by_code[code]
        count = rng.randint(2, max(2, min(12, on_duty[(code, key)] // 3)))
        when = _departure_time(rng, last_arrival[(code, key)] + timedelta(hours=1), now)
        location = rng.choice(country.arrive_at) if rng.random() < 0.6 else None
        note = rng.choice(_DEPARTURE_NOTES)
        user = f"UDEMO{100 + index:04d}"
        rows.append(_movement(MovementKind.DEPARTURE, country, key, count, location, note, user, when))
    return rows


def _movement(
    kind: MovementKind,
    country: DemoCountry,
    capability: str,
    count: int,
    location: str | None,
    note: str | None,
    user: str,
    when: datetime,
) -> Movement:
    command = "/arrivals" if kind == MovementKind.ARRIVAL else "/departures"
    text = f"{command} {country.typed} {count} {capability}"
    if location:
        text += f" at {location}"
    if note:
        text += f" -- {note}"
    return Movement(
        country=country.code,
        kind=kind,
        count=count,
        capability=capability,
        location=location,
        note=note,
        recorded_by=user,
        channel_id=DEMO_CHANNEL,
        command_text=text,
        created_at=when.replace(microsecond=0),
    )


def _arrival_time(rng: random.Random, now: datetime) -> datetime:
    """A moment in the four days before ``now`` at a plausible local hour, never after ``now``."""
    for _ in range(100):
        when = now - ARRIVAL_WINDOW * rng.random()
        if _FIRST_HOUR <= when.astimezone(_LOCAL).hour < _LAST_HOUR:
            return when
    return now - ARRIVAL_WINDOW * rng.random()


def _departure_time(rng: random.Random, start: datetime, now: datetime) -> datetime:
    """A moment between ``start`` and ``now``, at a plausible local hour if there is one."""
    when = start + (now - start) * rng.uniform(0.2, 0.9)
    for _ in range(100):
        if _FIRST_HOUR <= when.astimezone(_LOCAL).hour < _LAST_HOUR:
            break
        when = start + (now - start) * rng.random()
    return when


def _local_time(day: datetime, hour: int, minute: int) -> datetime:
    local = day.astimezone(_LOCAL).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return local.astimezone(UTC)
