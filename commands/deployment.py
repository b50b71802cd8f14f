"""`/deployment` — where a country, or every country, stands: pledged, arrived, departed, on duty."""

from __future__ import annotations

from dataclasses import dataclass

from commands.blocks import (
    Block,
    code_sections,
    context,
    fields_section,
    header,
    lines_within,
    percent,
    progress_bar,
    section,
)
from commands.common import HELP_WORDS, CommandContext, Reply, UsageError, plural
from commands.countries import Country, country_by_code, flag
from commands.history import history_reply
from commands.parsing import country_from
from storage import totals
from storage.ledger import Bucket, CountryStatus

COMMAND = "/deployment"
RECORDS = False
NAME_WIDTH = 20
COUNTRY_TABLE_BUDGET = 7000  # the capability table and the summary share the message


@dataclass(frozen=True)
class One:
    country: Country


@dataclass(frozen=True)
class Everyone:
    pass


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class History:
    country: Country


Request = One | Everyone | Help | History


def parse(text: str) -> Request:
    words = text.split()
    if not words or (len(words) == 1 and words[0].lower() in ("all", "everyone")):
        return Everyone()
    if len(words) == 1 and words[0].lower() in HELP_WORDS:
        return Help()
    if words[0].lower() == "history":
        if len(words) == 1:
            raise UsageError("Which country?", hint="Usage: `/deployment history <country>`")
        return History(country_from(" ".join(words[1:])))
    if any(ch.isdigit() for ch in text):
        raise UsageError(
            "`/deployment` takes a country, or nothing for every country.",
            hint="Usage: `/deployment [country]`",
        )
    return One(country_from(text))


def handle(text: str, ctx: CommandContext) -> Reply:
    request = parse(text)
    if isinstance(request, Help):
        return help_reply()
    if isinstance(request, History):
        return history_reply(ctx.session, ctx.config, request.country, ctx.now())
    if isinstance(request, One):
        status = totals.deployment_status(ctx.session, request.country.code).get(request.country.code)
        return country_reply(request.country, status or CountryStatus(request.country.code))
    return overview_reply(totals.deployment_status(ctx.session))


def help_reply() -> Reply:
    lines = [
        "*/deployment* — where contingents stand.",
        "• `/deployment` — every country with a pledge or a movement, biggest gaps first, and the totals",
        "• `/deployment <country>` — one country: pledged, arrived, departed, on duty and fill rate, by capability",
        "• `/deployment history <country>` — the last 20 changes: who, when, what (undos shown as such)",
        "_On duty_ = arrived − departed. _Fill_ = on duty ÷ pledged. _Gap_ = pledged − on duty.",
    ]
    return Reply(text="\n".join(lines), blocks=[section("\n".join(lines))])


def _bar(bucket: Bucket) -> str:
    return f"{progress_bar(bucket.fill_rate)} {percent(bucket.fill_rate)}"


def _capability_table(by_capability: dict[str | None, Bucket]) -> list[str]:
    rows = [f"{'Capability':<16}{'Pledged':>8}{'Arrived':>8}{'Left':>6}{'On duty':>8}  Fill"]
    ordered = sorted(by_capability.items(), key=lambda kv: (kv[0] is None, -kv[1].gap, kv[0] or ""))
    for key, bucket in ordered:
        name = key or "unspecified"
        rows.append(
            f"{name[:15]:<16}{bucket.pledged:>8,}{bucket.arrived:>8,}{bucket.departed:>6,}{bucket.on_duty:>8,}  {_bar(bucket)}"
        )
    return rows


def country_reply(country: Country, status: CountryStatus) -> Reply:
    total = status.total
    if not status.by_capability:
        text = f"Nothing recorded for {country.name} yet: no pledge, no movement."
        return Reply(text=text, blocks=[section(f"{flag(country)} {text}")])
    blocks: list[Block] = [
        header(f"{country.name} — deployment"),
        fields_section(
            [
                f"*Pledged*\n{total.pledged:,}",
                f"*On duty*\n{total.on_duty:,}",
                f"*Arrived*\n{total.arrived:,}",
                f"*Departed*\n{total.departed:,}",
            ]
        ),
        section(f"{flag(country)} *Fill* {_bar(total)}" + (f" · gap *{total.gap:,}*" if total.gap else "")),
        *code_sections(_capability_table(status.by_capability)),
    ]
    fallback = (
        f"{country.name}: {total.on_duty:,} on duty of {total.pledged:,} pledged ({percent(total.fill_rate)}); "
        f"arrived {total.arrived:,}, departed {total.departed:,}."
    )
    return Reply(text=fallback, blocks=blocks)


def overview_reply(statuses: dict[str, CountryStatus]) -> Reply:
    if not statuses:
        text = "Nothing recorded yet: no pledge and no movement for any country."
        return Reply(text=text, blocks=[section(f":globe_with_meridians: {text}")])
    grand = Bucket()
    by_capability: dict[str | None, Bucket] = {}
    for status in statuses.values():
        for key, bucket in status.by_capability.items():
            grand.add(bucket)
            by_capability.setdefault(key, Bucket()).add(bucket)
    totals = [(country_by_code(code), status.total) for code, status in statuses.items()]
    totals.sort(key=lambda item: (-item[1].gap, item[0].name))
    rows = [f"{'Country':<{NAME_WIDTH}}{'Pledged':>8}{'On duty':>8}{'Gap':>6}  Fill"]
    rows += [
        f"{country.name[: NAME_WIDTH - 1]:<{NAME_WIDTH}}{bucket.pledged:>8,}{bucket.on_duty:>8,}{bucket.gap:>6,}  {_bar(bucket)}"
        for country, bucket in totals
    ]
    shown = lines_within(rows, COUNTRY_TABLE_BUDGET)
    left_out = len(rows) - len(shown)
    summary = (
        f":globe_with_meridians: *{grand.on_duty:,} on duty* of {grand.pledged:,} pledged "
        f"— {_bar(grand)} · gap *{grand.gap:,}* · {len(statuses)} countries"
    )
    blocks: list[Block] = [
        header("Deployment — all countries"),
        section(summary),
        context("Biggest gaps first. `/deployment <country>` for one country's detail."),
        *code_sections(shown),
    ]
    if left_out:
        blocks.append(
            context(
                f":scissors: {plural(left_out, 'more country', 'more countries')} with smaller gaps not shown "
                "— `/deployment <country>` shows one country."
            )
        )
    blocks += [section("*By capability, all countries*"), *code_sections(_capability_table(by_capability))]
    fallback = (
        f"All countries: {grand.on_duty:,} on duty of {grand.pledged:,} pledged ({percent(grand.fill_rate)}), "
        f"{len(statuses)} countries."
    )
    return Reply(text=fallback, blocks=blocks)
