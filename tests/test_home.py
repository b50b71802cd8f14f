"""Issue 9: the App Home board — published on app_home_opened, refreshed after changes for recent
visitors, within 100 blocks for 200 countries. (How and when the refresh runs: test_home_refresh.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot import scheduler
from commands.alert_levels import default_scale
from commands.capabilities import default_vocabulary
from commands.common import CommandConfig
from commands.countries import all_countries
from commands.home import MAX_HOME_BLOCKS, Board, board_view
from commands.incident_feed import IncidentSummary
from storage.ledger import Bucket, CountryStatus
from storage.models import AlertNotice, Role
from tests.support.bot import RunningBot
from tests.test_rendering import assert_valid_message

VIEW_TOO_LARGE = 250_000  # bytes of view JSON (views.publish's view_too_large)


def assert_valid_home(view: dict[str, Any]) -> None:
    """A Home view Slack accepts: at most 100 blocks that slack_sdk validates, under 250 kB."""
    blocks = view["blocks"]
    assert view["type"] == "home"
    assert 0 < len(blocks) <= MAX_HOME_BLOCKS
    for start in range(0, len(blocks), 10):  # the per-block checks of the message validator
        assert_valid_message({"text": "home", "blocks": blocks[start : start + 10]}, max_blocks=10)
    assert len(json.dumps(view).encode()) < VIEW_TOO_LARGE


ADMIN = "UADMIN"
ANNA = "U0ANNA"  # Poland's liaison officer
OLGA = "U0OLGA"  # ops
NOW = datetime(2026, 7, 21, 5, 0, tzinfo=UTC)
CONFIG = CommandConfig(zone=ZoneInfo("Europe/Paris"), vocabulary=default_vocabulary())


def open_home(bot: RunningBot, user: str, event_id: str) -> None:
    event = {"type": "app_home_opened", "user": user, "channel": "D" + user, "tab": "home", "event_ts": "1.0"}
    assert bot.client.post_event(event, event_id=event_id).status_code == 200


def published(bot: RunningBot, user: str) -> list[dict[str, Any]]:
    return [c.params["view"] for c in bot.slack.calls("views.publish") if c.params["user_id"] == user]


def refresh_boards(bot: RunningBot) -> int:
    """What the scheduler's Home refresh job does at its tick; returns the boards it queued."""
    return scheduler.run_home_refresh(bot.runtime)


def readable(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def set_up(bot: RunningBot) -> None:
    bot.reply("/liaison", f"assign <@{ANNA}|anna> poland", user_id=ADMIN)
    bot.reply("/liaison", f"role <@{OLGA}|olga> ops", user_id=ADMIN)
    bot.reply("/liaison", "link poland", user_id=ADMIN, channel_id="C0PL")
    bot.reply("/pledge", "poland 100", user_id=ADMIN)
    bot.reply("/pledge", "spain 300", user_id=ADMIN)
    bot.reply("/pledge", "italy 50", user_id=ADMIN)
    bot.reply("/arrivals", "spain 20", user_id=ADMIN)


def test_a_liaison_sees_their_country_first_their_role_and_the_ack_state(bot: RunningBot) -> None:
    set_up(bot)
    bot.reply("/alert", "raise urgence credible threat at the river", user_id=OLGA, channel_id="COPS")
    open_home(bot, ANNA, "Ev0ANNA1")
    bot.deliver()
    [view] = published(bot, ANNA)
    assert_valid_home(view)
    text = readable(view)
    assert "you are liaison officer for :flag-pl: Poland" in text
    assert "Alert level: Urgence attentat" in text
    assert "*Poland has not acknowledged yet*" in text
    assert "Acknowledged by *0 of 1 country*" in text
    assert "*20 on duty* of 450 pledged" in text
    table = next(
        b["text"]["text"] for b in view["blocks"] if b["type"] == "section" and "```" in b["text"]["text"]
    )
    rows = table.strip("`").split("\n")[1:]
    assert rows[0].startswith("* Poland")  # hers first, though Spain's gap (280) is bigger
    assert rows[1].startswith("Spain")


def test_ops_see_their_role(bot: RunningBot) -> None:
    set_up(bot)
    open_home(bot, OLGA, "Ev0OLGA1")
    bot.deliver()
    [view] = published(bot, OLGA)
    assert "*operations centre* (ops)" in readable(view)
    assert "no notice issued yet" in readable(view)


def test_boards_of_recent_visitors_are_refreshed_after_a_change(bot: RunningBot) -> None:
    set_up(bot)
    open_home(bot, ANNA, "Ev0ANNA1")
    bot.deliver()
    assert len(published(bot, ANNA)) == 1
    bot.reply("/arrivals", "poland 40", user_id=ANNA, channel_id="C0PL")
    bot.deliver()
    assert len(published(bot, ANNA)) == 1  # not in the command's transaction: the refresher does it
    assert refresh_boards(bot) == 1
    bot.deliver()
    views = published(bot, ANNA)
    assert len(views) == 2
    assert "*60 on duty*" in readable(views[-1])
    assert published(bot, OLGA) == []  # never opened Home: nothing is pushed to her

    # A read-only command changes nothing: no refresh.
    bot.advance(minutes=1)
    bot.reply("/deployment", "", user_id=ANNA)
    assert refresh_boards(bot) == 0
    bot.deliver()
    assert len(published(bot, ANNA)) == 2

    # Someone who has not looked for a long time is refreshed when they next open it.
    bot.advance(hours=9)
    bot.reply("/arrivals", "spain 1", user_id=ADMIN)
    assert refresh_boards(bot) == 0
    bot.deliver()
    assert len(published(bot, ANNA)) == 2


def board_of_200(own: list[str]) -> Board:
    codes = [country.code for country in all_countries()[:200]]
    statuses = {
        code: CountryStatus(code, {None: Bucket(pledged=40 + i, arrived=i % 30)})
        for i, code in enumerate(codes)
    }
    return Board(
        user_id=ANNA,
        roles={Role.OPS},
        own_countries=own,
        statuses=statuses,
        level=default_scale()["renforcee"],
        notice=AlertNotice(
            id=4, level="renforcee", previous_level="vigilance", reason="r", set_by=OLGA, created_at=NOW
        ),
        notified=codes,
        acknowledged={code: (ANNA, NOW) for code in codes[:120]},
        incidents=[IncidentSummary(f"INC-{i}", "Suspicious package <!channel>", "sev2") for i in range(40)],
        now=NOW,
    )


def test_a_board_of_200_countries_fits_a_home_view() -> None:
    view = board_view(board_of_200(own=["PL", "ES"]), CONFIG)
    assert_valid_home(view)
    text = readable(view)
    assert "200 countries" in text
    assert "Acknowledged by *120 of 200 countries*" in text
    assert "and 55 more" in text
    assert "<!channel>" not in text
    assert "25 more open incidents" in text
    rows = "".join(
        b["text"]["text"] for b in view["blocks"] if b["type"] == "section" and "```" in b["text"]["text"]
    )
    assert rows.count("%") == 200  # every country is in the table, one fill rate each


def test_a_failing_board_never_costs_the_command_nor_the_other_boards(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot import home
    from storage.models import Movement

    set_up(bot)
    open_home(bot, ANNA, "Ev0ANNA1")
    open_home(bot, OLGA, "Ev0OLGA1")
    bot.deliver()
    real_board = home.board_for

    def broken_for_anna(session: Any, config: Any, user_id: str, *args: Any) -> Any:
        if user_id == ANNA:
            raise RuntimeError("a bug in the board")
        return real_board(session, config, user_id, *args)

    monkeypatch.setattr(home, "board_for", broken_for_anna)
    body = bot.reply("/arrivals", "poland 5", user_id=ANNA, channel_id="C0PL")
    assert body["response_type"] == "in_channel"
    assert [m.count for m in bot.rows(Movement) if m.country == "PL"] == [5]
    assert refresh_boards(bot) == 1
    bot.deliver()
    assert len(published(bot, ANNA)) == 1  # hers failed; the log says so
    assert len(published(bot, OLGA)) == 2
    assert "*25 on duty*" in readable(published(bot, OLGA)[-1])
