"""Home boards are refreshed off the command's path: a change only marks the boards stale (one insert,
committed with it); the scheduler's refresh job re-publishes recent visitors' boards at most once per
LIAISON_HOME_REFRESH_SECONDS, in one process at a time, and a crash loses nothing."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from bot import home, scheduler
from storage import home_boards
from storage.db import Database
from storage.models import HomeBoardChange
from tests.support.bot import RunningBot, reply_text, running_bot
from tests.support.meanwhile import TypedMeanwhile
from tests.support.signing import SignedClient
from tests.support.slack_standin import SlackStandIn
from tests.test_cli import base_env, serving
from tests.test_home import ANNA, OLGA, open_home, published, readable, refresh_boards, set_up

INTERVAL = timedelta(seconds=5)  # LIAISON_HOME_REFRESH_SECONDS' default


def arrivals(bot: RunningBot, count: int) -> None:
    body = bot.reply("/arrivals", f"poland {count}", user_id=ANNA, channel_id="C0PL")
    assert body["response_type"] == "in_channel", body


def visited(bot: RunningBot, *users: str) -> None:
    """`users` opened Home (one publish each, delivered); pending marks from the set-up are taken."""
    for number, user in enumerate(users):
        open_home(bot, user, f"Ev0VISIT{number}{user}")
    refresh_boards(bot)
    bot.deliver()
    bot.advance(seconds=INTERVAL.total_seconds())


def test_a_change_reaches_recent_visitors_when_the_refresher_runs(any_bot: RunningBot) -> None:
    bot = any_bot
    set_up(bot)
    visited(bot, ANNA)
    before = len(published(bot, ANNA))

    arrivals(bot, 40)
    bot.deliver()
    assert len(published(bot, ANNA)) == before  # the command itself queues no board

    assert refresh_boards(bot) == 1
    bot.deliver()
    assert len(published(bot, ANNA)) == before + 1
    assert "*60 on duty*" in readable(published(bot, ANNA)[-1])
    assert bot.count(HomeBoardChange) == 0  # taken with the refresh


def test_a_burst_gives_one_publish_per_visitor_per_interval(any_bot: RunningBot) -> None:
    bot = any_bot
    set_up(bot)
    visited(bot, ANNA, OLGA)
    start = {user: len(published(bot, user)) for user in (ANNA, OLGA)}

    for count in range(1, 31):  # 30 changes in one instant: 465 arrived
        arrivals(bot, count)
    assert refresh_boards(bot) == 2
    assert refresh_boards(bot) == 0  # at once again: nothing more to do
    bot.deliver()
    for user in (ANNA, OLGA):
        assert len(published(bot, user)) == start[user] + 1
        assert "*485 on duty*" in readable(published(bot, user)[-1])  # 465 + Spain's 20

    # More changes inside the interval wait for it to end, then go out together.
    bot.advance(seconds=1)
    arrivals(bot, 100)
    assert refresh_boards(bot) == 0
    bot.advance(seconds=3.9)
    arrivals(bot, 101)
    assert refresh_boards(bot) == 0
    bot.deliver()
    assert [len(published(bot, user)) for user in (ANNA, OLGA)] == [start[ANNA] + 1, start[OLGA] + 1]

    bot.advance(seconds=0.1)  # five seconds after the last refresh
    assert refresh_boards(bot) == 2
    bot.advance(seconds=5)
    arrivals(bot, 102)
    assert refresh_boards(bot) == 2  # not delivered yet: the outbox keeps only the newest board
    bot.deliver()
    for user in (ANNA, OLGA):
        assert len(published(bot, user)) == start[user] + 2
        assert "*788 on duty*" in readable(published(bot, user)[-1])


def test_the_interval_is_a_setting(
    migrated_database_url: str, slack: SlackStandIn, signing_secret: str
) -> None:
    with running_bot(migrated_database_url, slack, signing_secret, home_refresh_seconds=30) as bot:
        set_up(bot)
        visited(bot, ANNA)
        arrivals(bot, 1)
        bot.advance(seconds=25)  # 30 s after the set-up's refresh
        assert refresh_boards(bot) == 1
        arrivals(bot, 2)
        bot.advance(seconds=29)
        assert refresh_boards(bot) == 0
        bot.advance(seconds=1)
        assert refresh_boards(bot) == 1


def refresh_in_two_processes(bot: RunningBot, other_process: Database) -> list[int]:
    """Both refresh jobs at once, at the same instant; what each one queued."""
    now = bot.clock.now()
    results: list[int] = []

    def refresh(db: Database) -> None:
        results.append(home.refresh_if_stale(db, bot.runtime.config, now, INTERVAL))

    runs = [threading.Thread(target=refresh, args=(db,)) for db in (bot.runtime.db, other_process)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(20)
    return results


def test_two_refreshers_at_once_publish_once(any_bot: RunningBot, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes' refresh jobs at the same instant. On PostgreSQL both see stale boards and claim
    at the same moment (the first claim ever inserts the claim row, later ones update it), and a change
    commits after the winner read the boards: the loser still does nothing in that interval, and the
    change keeps its mark and goes out with the next refresh. SQLite runs one transaction at a time anyway."""
    bot = any_bot
    other_process = Database.from_url(bot.runtime.settings.database_url)
    concurrent = other_process.engine.dialect.name == "postgresql"
    both_saw_stale = threading.Barrier(2, timeout=10)
    real_claim, real_refresh = home_boards.claim_refresh, home.refresh_recent
    changed_meanwhile: list[int] = []

    def claim_together(*args: Any) -> bool:
        both_saw_stale.wait()
        return real_claim(*args)

    def refresh_while_a_change_commits(*args: Any) -> int:
        queued = real_refresh(*args)
        if not changed_meanwhile:  # after the boards were read, before the refresh commits
            changed_meanwhile.append(10)
            arrivals(bot, 10 * len(published(bot, ANNA)))
        return queued

    if concurrent:
        monkeypatch.setattr(home_boards, "claim_refresh", claim_together)
        monkeypatch.setattr(home, "refresh_recent", refresh_while_a_change_commits)
    try:
        set_up(bot)
        open_home(bot, ANNA, "Ev0ANNA1")
        bot.deliver()
        for round_ in (1, 2):  # 1: no refresh ever (the claim row is created); 2: the row exists
            arrivals(bot, round_)
            changed_meanwhile.clear()
            assert sorted(refresh_in_two_processes(bot, other_process)) == [0, 1]
            bot.deliver()
            assert len(published(bot, ANNA)) == 1 + round_
            bot.advance(seconds=INTERVAL.total_seconds())

        monkeypatch.undo()  # one refresher again
        assert refresh_boards(bot) == (1 if concurrent else 0)
        bot.deliver()
        on_duty = 20 + 1 + 2 + (10 + 20 if concurrent else 0)
        assert f"*{on_duty} on duty*" in readable(published(bot, ANNA)[-1])
    finally:
        other_process.dispose()


def test_a_crash_after_the_change_still_refreshes_the_boards(
    migrated_database_url: str, slack: SlackStandIn, signing_secret: str
) -> None:
    with running_bot(migrated_database_url, slack, signing_secret) as bot:
        set_up(bot)
        visited(bot, ANNA)
        arrivals(bot, 40)  # committed, with its mark; the process dies before its refresh job runs
        seen = len(published(bot, ANNA))
        stopped_at = bot.clock.now()
    with running_bot(migrated_database_url, slack, signing_secret) as restarted:
        restarted.clock.set(stopped_at)
        assert refresh_boards(restarted) == 1
        restarted.deliver()
        assert len(published(restarted, ANNA)) == seen + 1
        assert "*60 on duty*" in readable(published(restarted, ANNA)[-1])


def test_a_refresh_that_fails_midway_is_done_again(bot: RunningBot, monkeypatch: pytest.MonkeyPatch) -> None:
    set_up(bot)
    visited(bot, ANNA)
    seen = len(published(bot, ANNA))
    arrivals(bot, 40)

    def database_gone(*args: Any) -> Any:
        raise RuntimeError("connection lost while building the boards")

    monkeypatch.setattr(home, "gather_shared", database_gone)
    with pytest.raises(RuntimeError):
        refresh_boards(bot)  # rolled back: the marks and the claim stay as they were
    assert bot.count(HomeBoardChange) >= 1
    monkeypatch.undo()
    assert refresh_boards(bot) == 1
    bot.deliver()
    assert len(published(bot, ANNA)) == seen + 1
    assert "*60 on duty*" in readable(published(bot, ANNA)[-1])


def test_building_the_boards_never_holds_up_a_command(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: the boards are read from a snapshot, outside the one writer's turn; a change committed
    meanwhile keeps its mark and goes out with the next refresh."""
    set_up(bot)
    visited(bot, ANNA)
    arrivals(bot, 40)
    real_shared = home.gather_shared
    meanwhile = TypedMeanwhile(bot, "/arrivals", "poland 5", user_id=ANNA, channel_id="C0PL")

    def shared_while_someone_types(*args: Any) -> Any:
        shared = real_shared(*args)
        meanwhile.type_once()
        return shared

    monkeypatch.setattr(home, "gather_shared", shared_while_someone_types)
    assert refresh_boards(bot) == 1
    assert meanwhile.reply is not None
    assert "Poland: 5 arrived" in reply_text(meanwhile.reply)  # at once, not "busy" after the lock timeout
    bot.deliver()
    assert "*60 on duty*" in readable(published(bot, ANNA)[-1])  # the board as of its snapshot
    assert bot.count(HomeBoardChange) == 1  # the arrival typed meanwhile kept its mark
    monkeypatch.undo()
    bot.advance(seconds=INTERVAL.total_seconds())
    assert refresh_boards(bot) == 1
    bot.deliver()
    assert "*65 on duty*" in readable(published(bot, ANNA)[-1])


def test_a_refresher_overtaken_while_building_gives_up_and_the_change_goes_out_next(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: while a slow refresher builds its boards from a snapshot, another one refreshes and
    takes the marks, and a change then adds a mark that may reuse an id the snapshot saw. The slow
    one must not take that mark with its older boards: it gives up, and the change goes out next."""
    set_up(bot)
    visited(bot, ANNA)
    arrivals(bot, 40)
    slow_pass_at = bot.clock.now() + 2 * INTERVAL
    real_boards = home.recent_boards
    overtaken: list[int] = []

    def boards_while_overtaken(*args: Any) -> Any:
        views = real_boards(*args)
        if not overtaken:  # another process, one interval earlier in its own pass, refreshes first
            monkeypatch.setattr(home, "recent_boards", real_boards)
            overtaken.append(
                home.refresh_if_stale(bot.runtime.db, bot.runtime.config, slow_pass_at - INTERVAL, INTERVAL)
            )
            arrivals(bot, 5)
        return views

    monkeypatch.setattr(home, "recent_boards", boards_while_overtaken)
    assert home.refresh_if_stale(bot.runtime.db, bot.runtime.config, slow_pass_at, INTERVAL) == 0
    assert overtaken == [1]
    assert bot.count(HomeBoardChange) == 1  # the change made meanwhile keeps its mark
    monkeypatch.undo()
    bot.clock.set(slow_pass_at + INTERVAL)
    assert refresh_boards(bot) == 1
    bot.deliver()
    assert "*65 on duty*" in readable(published(bot, ANNA)[-1])


def capture_statements(bot: RunningBot, action: Callable[[], object]) -> list[str]:
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # A connection's settings (PostgreSQL's set_config, SQLite's PRAGMAs) are set when they change.
        if not statement.startswith(("SELECT set_config(", "PRAGMA ")):
            statements.append(" ".join(statement.split()))

    event.listen(bot.runtime.db.engine, "before_cursor_execute", seen)
    try:
        action()
    finally:
        event.remove(bot.runtime.db.engine, "before_cursor_execute", seen)
    return statements


def test_a_command_adds_one_insert_and_never_asks_about_home_visitors(
    any_bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = any_bot
    set_up(bot)
    arrivals(bot, 1)  # Poland's first entry: its running total exists from here on

    # Nobody has opened Home.
    plain = capture_statements(bot, lambda: arrivals(bot, 2))
    about_home = [s for s in plain if "home_" in s]
    assert len(about_home) == 1, about_home
    assert about_home[0].startswith("INSERT INTO home_board_change")
    assert not [s for s in plain if "outbox" in s]  # answered in the ack, nothing queued

    # With visitors: still not one question about them on the command's path.
    visited(bot, ANNA, OLGA)
    with_visitors = capture_statements(bot, lambda: arrivals(bot, 3))
    assert [s for s in with_visitors if "home_" in s] == about_home
    assert not [s for s in with_visitors if "outbox" in s]

    # What the mark costs: exactly that one statement.
    monkeypatch.setattr(home_boards, "mark_stale", lambda *args: None)
    unmarked = capture_statements(bot, lambda: arrivals(bot, 4))
    assert len(with_visitors) - len(unmarked) == 1

    # A read-only command marks nothing.
    read_only = capture_statements(bot, lambda: bot.reply("/deployment", "", user_id=ANNA))
    assert not [s for s in read_only if "home_" in s]


def test_the_scheduler_ticks_every_second_and_its_job_refreshes(bot: RunningBot) -> None:
    jobs = scheduler.build_scheduler(bot.runtime)
    job = jobs.get_job(scheduler.HOME_REFRESH_JOB)
    assert job.trigger.interval == timedelta(seconds=1)
    set_up(bot)
    visited(bot, ANNA)
    seen = len(published(bot, ANNA))
    arrivals(bot, 40)
    job.func(*job.args)
    bot.deliver()
    assert len(published(bot, ANNA)) == seen + 1


def test_a_served_process_refreshes_a_visitors_board(tmp_path: Path, slack: SlackStandIn) -> None:
    """`liaison serve` with its own scheduler: the board follows a change within a tick or two."""
    signing_secret = "sig-" + secrets.token_hex(16)
    env = base_env(
        f"sqlite:///{tmp_path / 'served.db'}",
        SLACK_SIGNING_SECRET=signing_secret,
        SLACK_BOT_TOKEN="xoxb-" + secrets.token_hex(16),
        SLACK_API_URL=slack.base_url,
        LIAISON_OUTBOX_POLL_SECONDS="0.05",
        LIAISON_OUTBOX_CHANNEL_INTERVAL_SECONDS="0",
    )
    with serving(env, tmp_path) as served, SignedClient(served.url, signing_secret) as client:
        event = {"type": "app_home_opened", "user": ANNA, "tab": "home", "event_ts": "1.0"}
        assert client.post_event(event, event_id="Ev0SERVED").status_code == 200
        slack.wait_for_calls("views.publish", 1)
        response = client.post_command("/arrivals", "poland 40")
        assert response.status_code == 200
        assert "*40 on duty*" in str(slack.wait_for_calls("views.publish", 2)[-1].params["view"])
