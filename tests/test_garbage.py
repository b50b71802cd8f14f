"""A request's objects are freed as it ends, none left in reference cycles for the garbage collector:
its pauses grow with what it has to look through. ~67 objects per `/arrivals` were left in cycles
(each request's session, reachable from its own `info`), and `liaison serve` stopped for ~25 ms every
~750 requests to collect them (bench/RESULTS.md); a refused command left its exception, and with it
the whole request, in a cycle through the writer thread's queue item."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from bot.http import SLACK_PATH
from bot.scheduler import run_digests
from bot.slack_requests import wsgi_environ
from storage import outbox
from tests.support.bot import RunningBot

REQUESTS = 20


def environ(bot: RunningBot, command: str, text: str, n: int) -> dict[str, Any]:
    """A signed slash command straight into the WSGI app (an HTTP client of the tests' own would
    leave objects of its own to count)."""
    factory = bot.client.factory
    body = factory.slash_command(command, text, user_id=f"U{n:08d}", channel_id="COPS")
    return wsgi_environ(SLACK_PATH, body, factory.headers(body))


def answered(bot: RunningBot, request: dict[str, Any]) -> bytes:
    statuses: list[str] = []

    def start_response(status: str, _headers: Any, _exc_info: Any = None) -> None:
        statuses.append(status)

    body = b"".join(bot.wsgi(request, start_response))
    assert statuses == ["200 OK"], statuses
    return body


@contextmanager
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def cyclic_garbage() -> Counter[str]:
    """What the collector finds unreachable now, by type."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    gc.collect()
    return Counter(type(thing).__qualname__ for thing in gc.garbage)


@pytest.mark.parametrize(
    ("command", "text", "answer"),
    [
        ("/arrivals", "poland 1", b"poland: 1 arrived"),
        ("/arrivals", "atlantis 5", b"know the country `atlantis`"),
        ("/digest", "preview", b"digest preview"),
    ],
    ids=["recorded", "refused", "report"],
)
def test_a_command_leaves_nothing_for_the_garbage_collector(
    any_bot: RunningBot, command: str, text: str, answer: bytes
) -> None:
    bot = any_bot
    requests = [environ(bot, command, text, n) for n in range(REQUESTS + 5)]
    for request in requests[:5]:  # caches filled, statements prepared
        answered(bot, request)
    with collector_off():
        for request in requests[5:]:
            assert answer in answered(bot, request).lower()
        left = cyclic_garbage()
    assert sum(left.values()) == 0, left.most_common(10)


def test_a_preview_after_a_digest_leaves_nothing_for_the_garbage_collector(any_bot: RunningBot) -> None:
    """The preview then reports since the digest (PostgreSQL: by the snapshot it stored, whose query
    clause built per call left ~24 objects in cycles)."""
    bot = any_bot
    bot.reply("/digest", "subscribe 10:00", user_id="UADMIN", channel_id="COPS")
    bot.advance(hours=1)
    assert run_digests(bot.runtime).sent == ["COPS 2026-07-20"]
    requests = [environ(bot, "/digest", "preview", n) for n in range(REQUESTS + 5)]
    for request in requests[:5]:
        answered(bot, request)
    with collector_off():
        for request in requests[5:]:
            assert b"digest preview" in answered(bot, request).lower()
        left = cyclic_garbage()
    assert sum(left.values()) == 0, left.most_common(10)


def test_a_delivery_pass_leaves_nothing_for_the_garbage_collector(any_bot: RunningBot) -> None:
    """The outbox worker claims messages while commands run: each claim built its query anew, three
    aliases of the outbox table with a copy of every column, ~2,500 objects in cycles per claim."""
    bot = any_bot

    def post_to(channels: list[str]) -> None:
        with bot.runtime.db.session() as session:
            for channel in channels:
                outbox.post_message(session, channel, text=f"hello {channel}", now=bot.runtime.clock.now())

    post_to(["C0WARM1", "C0WARM2"])
    assert bot.deliver() == 2  # the worker's client and statements ready
    channels = [f"C0GC{n}" for n in range(5)]
    with collector_off():
        post_to(channels)
        assert bot.deliver() == len(channels)
        left = cyclic_garbage()
    assert sum(left.values()) == 0, left.most_common(10)
    assert all(bot.slack.messages(channel) for channel in channels)
