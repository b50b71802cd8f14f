"""What Slack receives: every reply is valid Block Kit within Slack's limits, user text is escaped."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlmodel import Session

from commands import arrivals, departures, deployment, duplicates, pledge
from commands.blocks import (
    code_sections,
    escape,
    fit_blocks,
    percent,
    progress_bar,
    section,
    text_sections,
    truncate,
)
from commands.capabilities import default_vocabulary
from commands.common import Caller, CommandConfig, CommandContext, Reply, resolve
from commands.countries import all_countries, country_by_code
from commands.home import MAX_HOME_BLOCKS, home_view
from storage.clock import FrozenClock
from storage.db import Database
from storage.ledger import Bucket, CountryStatus
from storage.models import CommandLog, Movement, MovementKind, PendingCommand
from tests.support.block_kit import (
    ESCAPED,
    HOSTILE,
    RAW_CONTROL,
    assert_valid_message,
    texts_of,
)

START = datetime(2026, 7, 20, 7, 0, tzinfo=UTC)  # 09:00 in Paris
CALLER = Caller(user_id="U0LIAISON1", user_name="anna", channel_id="C0POLAND")
# The caller is an admin so that every command (pledges included) is theirs to use.
CONFIG = CommandConfig(
    zone=ZoneInfo("Europe/Paris"), vocabulary=default_vocabulary(), admins=frozenset({CALLER.user_id})
)
CAPABILITY_KEYS = [c.key for c in CONFIG.vocabulary]


def assert_escaped(message: dict[str, Any]) -> None:
    everything = "\n".join(texts_of(message))
    for raw in RAW_CONTROL:
        assert raw not in everything, f"{raw!r} reached Slack unescaped:\n{everything}"
    for escaped in ESCAPED:
        assert escaped in everything, f"{escaped!r} missing:\n{everything}"


def mentions(message: dict[str, Any]) -> set[str]:
    return set(re.findall(r"<@([A-Z0-9]+)>", "\n".join(texts_of(message))))


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    db = Database.from_url(f"sqlite:///{tmp_path / 'render.db'}")
    db.migrate()
    try:
        with db.session() as session:
            yield session
    finally:
        db.dispose()


def ctx(session: Session, command: str = "/arrivals", clock: FrozenClock | None = None) -> CommandContext:
    return CommandContext(
        session=session,
        caller=CALLER,
        clock=clock or FrozenClock(START),
        config=CONFIG,
        command=command,
    )


def full_status(code: str, scale: int = 1) -> CountryStatus:
    status = CountryStatus(code)
    for index, key in enumerate([*CAPABILITY_KEYS, None]):
        status.by_capability[key] = Bucket(
            pledged=(1000 + 37 * index) * scale, arrived=(900 + 11 * index) * scale, departed=50 * index
        )
    return status


def longest_named_countries(count: int) -> list[str]:
    return [c.code for c in sorted(all_countries(), key=lambda c: (-len(c.name), c.code))[:count]]


# -- replies of the commands ----------------------------------------------------------------------


def test_arrival_recorded(session: Session) -> None:
    reply = resolve(
        arrivals.handle("poland 12 dog-team at CDG terminal 2 -- 2 handlers, 4 dogs", ctx(session)), session
    )
    message = reply.to_message()
    assert_valid_message(message)
    assert message["response_type"] == "in_channel"
    assert "Poland: 12 arrived (dog-team) at CDG terminal 2" in message["text"]
    assert mentions(message) == {"U0LIAISON1"}


def test_arrival_with_hostile_place_and_note_is_escaped_everywhere(session: Session) -> None:
    reply = resolve(arrivals.handle(f"poland 12 at {HOSTILE[:90]} -- {HOSTILE}", ctx(session)), session)
    message = reply.to_message()
    assert_valid_message(message)
    assert_escaped(message)
    assert mentions(message) == {"U0LIAISON1"}  # only the recorder, a Slack user id from Slack
    [movement] = session.execute(select(Movement)).scalars().all()
    assert movement.note == HOSTILE  # the ledger keeps what was typed


def test_departure_and_undo_with_hostile_place_are_escaped(session: Session) -> None:
    resolve(arrivals.handle(f"poland 12 at {HOSTILE[:90]}", ctx(session)), session)
    departed = resolve(
        departures.handle(f"poland 2 at {HOSTILE[:90]}", ctx(session, "/departures")), session
    ).to_message()
    undone = resolve(departures.handle("undo", ctx(session, "/departures")), session).to_message()
    for message in (departed, undone):
        assert_valid_message(message)
        assert "<!channel>" not in "\n".join(texts_of(message))
        assert "&lt;!channel&gt;" in "\n".join(texts_of(message))


def test_pledge_replies(session: Session) -> None:
    created = pledge.handle("poland 120 eod", ctx(session, "/pledge")).to_message()
    listing = pledge.handle("poland", ctx(session, "/pledge")).to_message()
    for message in (created, listing):
        assert_valid_message(message)
    assert "Pledge for Poland (eod): 120 (new)" in created["text"]
    assert listing["text"] == "Poland pledged 120 in total."


def test_help_replies_are_valid() -> None:
    context = CommandContext(session=None, caller=CALLER, clock=FrozenClock(START), config=CONFIG, command="")  # type: ignore[arg-type]
    for message in (
        resolve(arrivals.handle("help", context), context.session).to_message(),
        pledge.help_reply(context).to_message(),
        deployment.help_reply().to_message(),
    ):
        assert_valid_message(message)
        assert message["response_type"] == "ephemeral"


def test_deployment_of_one_country_with_every_capability() -> None:
    country = country_by_code("GS")  # the longest name there is
    message = deployment.country_reply(country, full_status("GS", scale=3)).to_message()
    assert_valid_message(message)
    header = message["blocks"][0]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": f"{country.name} — deployment", "emoji": True},
    }
    table = "\n".join(texts_of(message["blocks"][3:]))
    for key in [*CAPABILITY_KEYS, "unspecified"]:
        assert key in table


def test_deployment_of_one_country_totals_and_fill() -> None:
    status = CountryStatus("PL")
    status.by_capability = {None: Bucket(pledged=100, arrived=60, departed=10), "eod": Bucket(pledged=20)}
    message = deployment.country_reply(country_by_code("PL"), status).to_message()
    assert_valid_message(message)
    assert message["text"] == "Poland: 50 on duty of 120 pledged (42%); arrived 60, departed 10."
    fields = [f["text"] for f in message["blocks"][1]["fields"]]
    assert fields == ["*Pledged*\n120", "*On duty*\n50", "*Arrived*\n60", "*Departed*\n10"]
    fill = message["blocks"][2]["text"]["text"]
    assert "▓▓▓▓░░░░░░ 42%" in fill
    assert "gap *70*" in fill


def test_nothing_recorded_for_a_country() -> None:
    message = deployment.country_reply(country_by_code("PL"), CountryStatus("PL")).to_message()
    assert_valid_message(message)
    assert message["text"] == "Nothing recorded for Poland yet: no pledge, no movement."


def test_overview_of_46_countries_fits_one_message() -> None:
    codes = longest_named_countries(46)
    statuses = {code: full_status(code, scale=1 + index % 4) for index, code in enumerate(codes)}
    message = deployment.overview_reply(statuses).to_message()
    assert_valid_message(message)
    listed = "\n".join(texts_of(message["blocks"]))
    for code in codes:
        assert country_by_code(code).name[:19] in listed, code
    assert "46 countries" in message["text"]


def test_overview_lists_biggest_gaps_first_with_totals() -> None:
    statuses = {
        "PL": CountryStatus("PL", {None: Bucket(pledged=100, arrived=90)}),  # gap 10
        "DE": CountryStatus("DE", {None: Bucket(pledged=200, arrived=20)}),  # gap 180
        "IT": CountryStatus("IT", {"eod": Bucket(pledged=50, arrived=10, departed=5)}),  # gap 45
        "ES": CountryStatus("ES", {None: Bucket(arrived=5)}),  # no pledge: gap 0
    }
    message = deployment.overview_reply(statuses).to_message()
    assert_valid_message(message)
    table = next(t for t in texts_of(message["blocks"]) if t.startswith("```Country"))
    order = [line.split()[0] for line in table.strip("`").splitlines()[1:]]
    assert order == ["Germany", "Italy", "Poland", "Spain"]
    assert message["text"] == "All countries: 120 on duty of 350 pledged (34%), 4 countries."


def test_overview_with_nothing_recorded() -> None:
    message = deployment.overview_reply({}).to_message()
    assert_valid_message(message)
    assert "Nothing recorded yet" in message["text"]


def test_home_tab_of_46_countries_is_a_valid_view() -> None:
    statuses = {code: full_status(code) for code in longest_named_countries(46)}
    view = home_view(deployment.overview_reply(statuses))
    assert view["type"] == "home"
    assert_valid_message({"text": "home", "blocks": view["blocks"]}, max_blocks=MAX_HOME_BLOCKS)


def test_today_with_200_movements(session: Session) -> None:
    clock = FrozenClock(START + timedelta(hours=12))
    codes = longest_named_countries(46)
    for index in range(200):
        session.add(
            Movement(
                country=codes[index % len(codes)],
                kind=MovementKind.ARRIVAL if index % 3 else MovementKind.DEPARTURE,
                count=1 + index,
                capability=CAPABILITY_KEYS[index % len(CAPABILITY_KEYS)],
                location=(HOSTILE + " " + "x" * 100)[:100],
                note="n",
                recorded_by=f"U{index:08d}",
                channel_id="C0POLAND",
                command_text="/arrivals ...",
                created_at=START + timedelta(minutes=3 * index),
            )
        )
    session.flush()
    message = resolve(arrivals.handle("", ctx(session, clock=clock)), session).to_message()
    assert_valid_message(message)
    assert message["response_type"] == "ephemeral"
    assert message["text"] == "200 movements today (Monday 20 July)."
    everything = "\n".join(texts_of(message))
    assert "Showing the latest 40 of 200 movements today." in everything
    assert "<!channel>" not in everything
    assert "&lt;!channel&gt;" in everything
    assert "#200" in everything  # the latest first
    assert "#160" not in everything


def test_duplicate_prompt_is_valid_and_escaped(session: Session) -> None:
    context = ctx(session)
    previous = CommandLog(
        user_id=CALLER.user_id,
        channel_id=CALLER.channel_id,
        command="/arrivals",
        normalized_text="x",
        created_at=START - timedelta(seconds=30),
    )
    pending = PendingCommand(
        id=7,
        user_id=CALLER.user_id,
        channel_id=CALLER.channel_id,
        command="/arrivals",
        text=f"poland 4 -- {HOSTILE}",
        created_at=START,
    )
    message = duplicates.confirmation_reply(context, pending, previous).to_message()
    assert_valid_message(message)
    [actions] = [b for b in message["blocks"] if b["type"] == "actions"]
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [
        (duplicates.ACTION_RECORD_AGAIN, "7"),
        (duplicates.ACTION_DISCARD, "7"),
    ]
    blocks_text = "\n".join(texts_of(message["blocks"]))
    assert "<!channel>" not in blocks_text
    assert "&lt;!channel&gt;" in blocks_text


def test_duplicate_prompt_fallback_text_is_escaped(session: Session) -> None:
    previous = CommandLog(
        user_id=CALLER.user_id,
        channel_id="C0POLAND",
        command="/arrivals",
        normalized_text="x",
        created_at=START,
    )
    pending = PendingCommand(
        id=7,
        user_id=CALLER.user_id,
        channel_id="C0POLAND",
        command="/arrivals",
        text=HOSTILE,
        created_at=START,
    )
    message = duplicates.confirmation_reply(ctx(session), pending, previous).to_message()
    assert "<!channel>" not in message["text"]


# -- building blocks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "bar"),
    [
        (None, "··········"),
        (0.0, "░░░░░░░░░░"),
        (0.5, "▓▓▓▓▓░░░░░"),
        (0.42, "▓▓▓▓░░░░░░"),
        (0.96, "▓▓▓▓▓▓▓▓▓▓"),
        (1.0, "▓▓▓▓▓▓▓▓▓▓"),
        (1.7, "▓▓▓▓▓▓▓▓▓▓"),
        (-0.3, "░░░░░░░░░░"),
    ],
)
def test_progress_bar(ratio: float | None, bar: str) -> None:
    assert progress_bar(ratio) == bar


def test_progress_bar_width_and_monotony() -> None:
    assert progress_bar(0.5, width=4) == "▓▓░░"
    filled = [progress_bar(n / 100).count("▓") for n in range(0, 121)]
    assert filled == sorted(filled)
    assert all(len(progress_bar(n / 100)) == 10 for n in range(0, 121))


@pytest.mark.parametrize(
    ("ratio", "shown"),
    [(None, "—"), (0.0, "0%"), (0.5, "50%"), (0.426, "43%"), (1.0, "100%"), (1.25, "125%")],
)
def test_percent(ratio: float | None, shown: str) -> None:
    assert percent(ratio) == shown


def test_escape() -> None:
    assert escape("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"
    assert escape("plain") == "plain"


def test_long_texts_are_cut_within_limits() -> None:
    block = section("x" * 5000)
    assert len(block["text"]["text"]) == 3000
    assert block["text"]["text"].endswith("…")
    assert truncate("abc", 3) == "abc"


def test_text_and_code_sections_split_long_lists() -> None:
    lines = [f"line {n} " + "y" * 90 for n in range(200)]
    for blocks in (text_sections(lines), code_sections(lines)):
        assert len(blocks) > 1
        assert all(len(b["text"]["text"]) <= 3000 for b in blocks)
        joined = "\n".join(b["text"]["text"].strip("`") for b in blocks)
        assert all(line in joined for line in lines)


def test_fit_blocks_caps_at_fifty_and_says_so() -> None:
    blocks = [section(str(n)) for n in range(80)]
    fitted = fit_blocks(blocks)
    assert len(fitted) == 50
    assert fitted[-1]["type"] == "context"
    assert "cut short" in fitted[-1]["elements"][0]["text"]
    message = Reply(text="many", blocks=blocks).to_message()
    assert len(message["blocks"]) == 50


def test_reply_fallback_text_is_cut_to_slack_limit() -> None:
    message = Reply(text="z" * 10_000, blocks=[section("z")]).to_message()
    assert len(message["text"]) == 3000
    assert json.dumps(message)
