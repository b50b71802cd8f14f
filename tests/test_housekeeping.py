from __future__ import annotations

from datetime import timedelta

from bot.scheduler import run_housekeeping
from storage.models import CommandLog, Movement, ProcessedEvent, SeenRequest
from tests.support.bot import RunningBot


def test_old_event_ids_and_command_log_are_pruned_but_the_ledger_stays(bot: RunningBot) -> None:
    bot.reply("/arrivals", "poland 40")
    with bot.runtime.db.session() as session:
        session.add(ProcessedEvent(event_id="Ev1", received_at=bot.clock.now()))
    assert (bot.count(CommandLog), bot.count(SeenRequest)) == (1, 1)

    bot.advance(minutes=4)
    assert run_housekeeping(bot.runtime) == 0  # the signature could still be replayed

    bot.advance(minutes=2)
    assert run_housekeeping(bot.runtime) == 1  # its five minutes are over
    assert bot.count(SeenRequest) == 0

    bot.advance(days=1)
    assert run_housekeeping(bot.runtime) == 0

    bot.clock.advance(timedelta(days=2))
    assert run_housekeeping(bot.runtime) == 2
    assert bot.count(CommandLog) == 0
    assert bot.count(ProcessedEvent) == 0
    assert bot.count(Movement) == 1
