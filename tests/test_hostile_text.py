"""A corpus of hostile or careless command text, each sent as Slack sends it: every one is refused
with a clear, escaped, ephemeral message, and nothing is stored."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from storage.models import (
    Acknowledgement,
    AlertNotice,
    ChannelLink,
    CommandLog,
    LiaisonAssignment,
    Movement,
    OutboxMessage,
    PendingCommand,
    Pledge,
    UserRole,
)
from tests.support.bot import RunningBot, reply_text, running_bot
from tests.support.fixtures import TEST_SIGNING_SECRET
from tests.support.slack_standin import SlackStandIn

ADMIN = "UADMIN"
TABLES = (
    Movement,
    Pledge,
    CommandLog,
    PendingCommand,
    AlertNotice,
    Acknowledgement,
    ChannelLink,
    LiaisonAssignment,
    UserRole,
    OutboxMessage,
)

CORPUS: list[tuple[str, str, str]] = [
    # numbers that are not counts
    ("/arrivals", "poland 4٠", "mixes digits of different scripts"),
    ("/arrivals", "poland ৪0", "mixes digits of different scripts"),
    ("/arrivals", "poland 𝟒𝟎", "lookalike digits"),
    ("/arrivals", "poland 𝟜𝟘", "lookalike digits"),
    ("/arrivals", "poland 4０", "mixes digits of different scripts"),
    ("/arrivals", "poland 40.5", "must be a whole number"),
    ("/arrivals", "poland 1,000", "must be a whole number"),
    ("/arrivals", "poland 4e3", "must be a whole number"),
    ("/arrivals", "poland 0x10", "must be a whole number"),
    ("/arrivals", "poland -3", "can't be negative"),
    ("/arrivals", "poland −3", "can't be negative"),
    ("/arrivals", "poland 0", "must be at least 1"),
    ("/arrivals", "poland 99999999999999999999", "is more than one entry may record"),
    ("/arrivals", "poland 5001", "is more than one entry may record"),
    ("/arrivals", "poland k9", "How many? Add a number after Poland."),
    ("/arrivals", "poland forty", "How many? Add a number after Poland."),
    ("/arrivals", "40 poland", "Name the country first"),
    ("/pledge", "poland 4٠", "mixes digits of different scripts"),
    ("/pledge", "poland -1", "can't be negative"),
    ("/departures", "poland 𝟑", "lookalike digits"),
    # invisible and direction characters
    ("/arrivals", "\u202epoland 40", "change the reading direction"),
    ("/arrivals", "poland 40 -- \u202egpj.exe", "change the reading direction"),
    ("/arrivals", "poland\u2066 40\u2069", "change the reading direction"),
    ("/arrivals", "poland 40 at \u200fCDG", "change the reading direction"),
    ("/arrivals", "\u061cpoland 40", "change the reading direction"),
    ("/arrivals", "poland 40 \u202d", "change the reading direction"),
    ("/pledge", "\u202bspain 10", "change the reading direction"),
    ("/alert", "raise urgence \u202eevacuate now", "change the reading direction"),
    ("/liaison", "link \u2067poland", "change the reading direction"),
    ("/arrivals", "poland 40 -- a\x07b", "control characters"),
    ("/arrivals", "poland\x00 40", "control characters"),
    ("/arrivals", "poland 40 -- " + "x" * 1000, "That is too long"),
    # countries that are not
    ("/arrivals", "<!channel> 40", "I don't know the country `@channel`"),
    ("/arrivals", "<!here> 40", "I don't know the country `@here`"),
    ("/arrivals", "<@U999|eve> 40", "I don't know the country `&lt;@U999&gt;`"),
    ("/arrivals", "<#C999|ops> 40", "I don't know the country `&lt;#C999&gt;`"),
    (
        "/arrivals",
        "<https://evil.example|poland> 40",
        "I don't know the country `poland (https://evil.example)`",
    ),
    ("/arrivals", "<script> 40", "I don't know the country `&lt;script&gt;`"),
    ("/arrivals", "R&D 40", "I don't know the country `R&amp;D`"),
    ("/arrivals", "&amp; 40", "I don't know the country `&amp;amp;`"),
    ("/arrivals", "polnad 40", "Did you mean *Poland*"),
    ("/arrivals", "'; drop table movement; -- 40", "I don't know the country"),
    ("/arrivals", "🇽🇽 40", "I don't know the country"),
    ("/deployment", "<!everyone>", "I don't know the country `@everyone`"),
    ("/pledge", "<!subteam^S123|@ops> 10", "I don't know the country `@ops`"),
    # what follows the count
    ("/arrivals", "poland 40 <!channel>", "I don't understand `@channel`"),
    ("/arrivals", "poland 40 <north>", "I don't understand `&lt;north&gt;`"),
    ("/arrivals", "poland 40 eod <@U999|eve>", "I don't understand `&lt;@U999&gt;`"),
    ("/arrivals", "poland 40 at", "Say where after `at`"),
    ("/arrivals", "poland 40 --", "The note after `--` is empty."),
    ("/arrivals", "poland 40 -- " + "n" * 501, "The note is too long"),
    ("/arrivals", "poland 40 at " + "p" * 101, "The place is too long"),
    ("/arrivals", "poland 40 sniper", "I don't understand `sniper`"),
    ("/pledge", "poland 10 eod patrol", "Only one capability goes after the number"),
    # sub-commands and mentions
    ("/alert", "<!channel>", "`/alert` has no sub-command `@channel`"),
    ("/alert", "raise <!here> threat", "There is no alert level `@here`"),
    ("/alert", "raise urgence <>", "A reason is required"),
    ("/alert", "raise urgence " + "r" * 501, "The reason is too long"),
    ("/alert", "ack <!channel>", "`/alert ack` takes nothing after it."),
    ("/liaison", "assign <!channel> poland", "is not a Slack mention"),
    ("/liaison", "assign @bob poland", "is not a Slack mention"),
    ("/liaison", "assign <@U999|eve> <!here>", "I don't know the country `@here`"),
    ("/liaison", "role <!everyone> ops", "is not a Slack mention"),
    ("/liaison", "role <@U999|eve> root", "Usage: `/liaison role @user ops|admin|none`."),
    ("/liaison", "<script>", "`/liaison` has no sub-command `&lt;script&gt;`"),
    ("/arrivals", "undo <!channel>", "`/arrivals undo` takes nothing after it."),
]


@pytest.fixture(scope="module")
def corpus_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBot]:
    database = tmp_path_factory.mktemp("corpus") / "liaison.db"
    with SlackStandIn() as slack, running_bot(f"sqlite:///{database}", slack, TEST_SIGNING_SECRET) as running:
        yield running


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 60


@pytest.mark.parametrize(("command", "typed", "expected"), CORPUS)
def test_hostile_text_is_refused_clearly_and_stores_nothing(
    corpus_bot: RunningBot, command: str, typed: str, expected: str
) -> None:
    response = corpus_bot.command(command, typed, user_id=ADMIN)
    assert response.status_code == 200
    body = response.json()
    shown = reply_text(body)
    assert body["response_type"] == "ephemeral"
    assert body["blocks"][0]["text"]["text"].startswith(":warning:"), shown
    assert expected in shown, shown
    assert "<!" not in shown
    assert not re.search(r"<(?![@#][UWCGD][A-Z0-9]+>)", body["text"]), body["text"]  # no raw tag
    assert "Traceback" not in shown
    assert [corpus_bot.count(table) for table in TABLES] == [0] * len(TABLES)
