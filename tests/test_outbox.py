"""The outbox worker against the Slack stand-in, on SQLite and PostgreSQL.

Time is a FrozenClock moved by the tests; `worker.drain()` delivers whatever is due now.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import Session

from bot.outbox_worker import DeliveryPolicy, OutboxWorker
from bot.runtime import build_web_client
from bot.settings import Settings
from storage import outbox
from storage.clock import FrozenClock
from storage.db import Database
from storage.models import OutboxMessage, OutboxStatus
from tests.support.slack_standin import SlackStandIn

START = datetime(2026, 7, 20, 7, 0, tzinfo=UTC)
TOKEN = "xoxb-outbox-test"


@dataclass
class Failure:
    message_id: int
    error: str


@dataclass
class Outbox:
    db: Database
    clock: FrozenClock
    slack: SlackStandIn
    failures: list[Failure] = field(default_factory=list)
    _workers: list[OutboxWorker] = field(default_factory=list)
    _http: list[httpx.Client] = field(default_factory=list)

    def worker(
        self,
        *,
        lane_interval: float = 0.0,
        batch_size: int = 20,
        db: Database | None = None,
        api_url: str | None = None,
    ) -> OutboxWorker:
        settings = Settings(_env_file=None, slack_api_url=api_url or self.slack.base_url)  # type: ignore[call-arg]
        http = httpx.Client(timeout=5)
        self._http.append(http)

        def on_failure(session: Session, message: OutboxMessage, error: str, now: datetime) -> None:
            assert message.id is not None
            self.failures.append(Failure(message.id, error))

        worker = OutboxWorker(
            db or self.db,
            build_web_client(settings, TOKEN),
            self.clock,
            http=http,
            policy=DeliveryPolicy(lane_interval=timedelta(seconds=lane_interval), batch_size=batch_size),
            on_failure=on_failure,
        )
        self._workers.append(worker)
        return worker

    def post(self, channel: str, text: str, **kwargs: Any) -> int:
        with self.db.session() as session:
            message = outbox.post_message(session, channel, text=text, now=self.clock.now(), **kwargs)
            assert message.id is not None
            return message.id

    def row(self, message_id: int) -> OutboxMessage:
        with self.db.session() as session:
            message = session.get(OutboxMessage, message_id)
            assert message is not None
            return message

    def rows(self) -> list[OutboxMessage]:
        with self.db.session() as session:
            return list(session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars())  # type: ignore[arg-type]

    def advance(self, seconds: float) -> None:
        self.clock.advance(timedelta(seconds=seconds))

    def texts(self, channel: str) -> list[str]:
        return [m["text"] for m in self.slack.messages(channel)]

    def close(self) -> None:
        for worker in self._workers:
            worker.stop()
        for http in self._http:
            http.close()
        self.db.dispose()


@pytest.fixture
def box(database_url: str, slack: SlackStandIn) -> Iterator[Outbox]:
    db = Database.from_url(database_url)
    db.migrate()
    state = Outbox(db, FrozenClock(START), slack)
    try:
        yield state
    finally:
        state.close()


# -- order ----------------------------------------------------------------------------------------


def test_messages_are_delivered_in_order_per_channel(box: Outbox) -> None:
    worker = box.worker()
    for n in range(5):
        box.post("C0POLAND", f"poland {n}")
        box.post("C0GERMANY", f"germany {n}")

    assert worker.drain() == 10

    assert box.texts("C0POLAND") == [f"poland {n}" for n in range(5)]
    assert box.texts("C0GERMANY") == [f"germany {n}" for n in range(5)]
    assert all(m.status == OutboxStatus.SENT and m.slack_ts and m.attempts == 1 for m in box.rows())
    assert worker.drain() == 0
    assert len(box.slack.calls("chat.postMessage", include_failed=True)) == 10
    assert all(call.token == TOKEN for call in box.slack.calls())


def test_blocks_are_sent_with_the_text(box: Outbox) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*40 on duty*"}}]
    box.post("C0POLAND", "40 on duty", blocks=blocks)
    box.worker().drain()
    [message] = box.slack.messages("C0POLAND")
    assert (message["text"], message["blocks"]) == ("40 on duty", blocks)


# -- retries --------------------------------------------------------------------------------------


def test_server_errors_then_rate_limit_are_retried_until_delivered_once(box: Outbox) -> None:
    box.slack.fail("chat.postMessage", status=500, times=2, channel="C0POLAND")
    box.slack.fail("chat.postMessage", status=429, retry_after=30, channel="C0POLAND")
    worker = box.worker()
    poland = box.post("C0POLAND", "40 arrived")
    germany = box.post("C0GERMANY", "10 arrived")

    def attempts() -> list[int]:
        return [c.status for c in box.slack.calls("chat.postMessage", "C0POLAND", include_failed=True)]

    worker.drain()
    assert attempts() == [500]
    assert box.texts("C0GERMANY") == ["10 arrived"]  # another channel is not held up
    first = box.row(poland)
    assert (first.status, first.last_error) == (OutboxStatus.PENDING, "internal_error")
    assert first.next_attempt_at == START + timedelta(seconds=2)

    box.advance(1.9)
    worker.drain()
    assert attempts() == [500]  # not due yet
    box.advance(0.1)
    worker.drain()
    assert attempts() == [500, 500]  # backoff doubles: next in 4 s

    box.advance(3.9)
    worker.drain()
    assert attempts() == [500, 500]
    box.advance(0.1)
    worker.drain()
    assert attempts() == [500, 500, 429]
    assert box.row(poland).last_error == "ratelimited"

    box.advance(29.9)
    worker.drain()
    assert attempts() == [500, 500, 429]  # Retry-After: 30 is honoured
    box.advance(0.1)
    worker.drain()
    assert attempts() == [500, 500, 429, 200]

    delivered = box.row(poland)
    assert (delivered.status, delivered.attempts, delivered.last_error) == (OutboxStatus.SENT, 4, None)
    assert delivered.sent_at == START + timedelta(seconds=36)
    assert box.texts("C0POLAND") == ["40 arrived"]
    box.advance(600)
    assert worker.drain() == 0
    assert box.row(germany).attempts == 1


def test_a_network_error_is_retried(box: Outbox) -> None:
    unreachable = box.worker(api_url="http://127.0.0.1:9/api/")  # nothing listens there
    message = box.post("C0POLAND", "hello")
    unreachable.drain()
    row = box.row(message)
    assert row.status == OutboxStatus.PENDING
    assert (row.last_error or "").startswith("network:")
    box.advance(2)
    box.worker().drain()
    assert box.texts("C0POLAND") == ["hello"]


def test_channel_not_found_fails_for_good_and_others_go_on(box: Outbox) -> None:
    box.slack.set_channel_error("C0GONE", "channel_not_found")
    worker = box.worker()
    gone = box.post("C0GONE", "first")
    gone_too = box.post("C0GONE", "second")
    box.post("C0POLAND", "still delivered")

    worker.drain()

    for message_id in (gone, gone_too):
        row = box.row(message_id)
        assert (row.status, row.last_error, row.attempts) == (OutboxStatus.FAILED, "channel_not_found", 1)
    assert [f.message_id for f in box.failures] == [gone, gone_too]
    assert {f.error for f in box.failures} == {"channel_not_found"}
    assert box.texts("C0POLAND") == ["still delivered"]
    box.advance(3600)
    assert worker.drain() == 0
    assert len(box.slack.calls("chat.postMessage", "C0GONE", include_failed=True)) == 2


def test_response_url_is_retried_then_refused_for_good(box: Outbox) -> None:
    box.slack.fail("response_url", status=500)
    worker = box.worker()
    with box.db.session() as session:
        retried = outbox.respond(
            session, box.slack.response_url("a"), {"text": "ok"}, lane="response:1", now=box.clock.now()
        ).id
    worker.drain()
    assert box.slack.calls("response_url:a") == []
    box.advance(2)
    worker.drain()
    assert [c.params for c in box.slack.calls("response_url:a")] == [{"text": "ok"}]
    assert retried is not None
    assert box.row(retried).status == OutboxStatus.SENT

    box.slack.fail("response_url", status=404)
    with box.db.session() as session:
        expired = outbox.respond(
            session, box.slack.response_url("b"), {"text": "late"}, lane="response:2", now=box.clock.now()
        ).id
    worker.drain()
    assert expired is not None
    row = box.row(expired)
    assert (row.status, row.last_error) == (OutboxStatus.FAILED, "response_url refused: http 404")


# -- edits and threads ----------------------------------------------------------------------------


def test_update_waits_for_the_original_and_edits_that_message(box: Outbox) -> None:
    box.slack.fail("chat.postMessage", status=500, channel="C0OPS")
    worker = box.worker()
    with box.db.session() as session:
        original = outbox.post_message(session, "C0OPS", text="Alert: vigilance", now=box.clock.now())
        edit = outbox.update_message(session, original, text="Alert: urgence", now=box.clock.now())
        reply = outbox.post_message(
            session, "C0OPS", text="acknowledged by Poland", now=box.clock.now(), thread_under=original
        )
    assert (original.id, edit.id, reply.id) != (None, None, None)

    worker.drain()
    assert box.slack.calls("chat.update") == []  # the original is not delivered yet
    assert box.slack.messages("C0OPS") == []

    box.advance(2)
    worker.drain()

    [posted, threaded] = box.slack.calls("chat.postMessage", "C0OPS")
    [updated] = box.slack.calls("chat.update")
    assert original.id is not None
    ts = box.row(original.id).slack_ts
    assert ts is not None
    assert posted.params["text"] == "Alert: vigilance"
    assert (updated.params["channel"], updated.params["ts"], updated.params["text"]) == (
        "C0OPS",
        ts,
        "Alert: urgence",
    )
    assert (threaded.params["thread_ts"], threaded.params["text"]) == (ts, "acknowledged by Poland")
    methods = [c.method for c in box.slack.calls()]
    assert methods == ["chat.postMessage", "chat.update", "chat.postMessage"]  # lane order kept


def test_update_of_a_message_that_failed_fails_too(box: Outbox) -> None:
    box.slack.set_channel_error("C0GONE", "channel_not_found")
    with box.db.session() as session:
        original = outbox.post_message(session, "C0GONE", text="v1", now=box.clock.now())
        edit = outbox.update_message(session, original, text="v2", now=box.clock.now())
    box.worker().drain()
    assert edit.id is not None
    assert box.row(edit.id).status == OutboxStatus.FAILED
    assert box.slack.calls("chat.update", include_failed=True) == []


# -- pacing ---------------------------------------------------------------------------------------


def test_one_message_per_second_per_channel(box: Outbox) -> None:
    worker = box.worker(lane_interval=1.0)
    first = box.post("C0POLAND", "one")
    second = box.post("C0POLAND", "two")
    other = box.post("C0GERMANY", "other channel")

    worker.drain()
    assert box.texts("C0POLAND") == ["one"]
    assert box.texts("C0GERMANY") == ["other channel"]

    box.advance(0.5)
    worker.drain()
    assert box.texts("C0POLAND") == ["one"]
    box.advance(0.5)
    worker.drain()
    assert box.texts("C0POLAND") == ["one", "two"]

    sent = {message_id: box.row(message_id).sent_at for message_id in (first, second, other)}
    assert sent[first] == sent[other] == START
    assert sent[second] == START + timedelta(seconds=1)


# -- several workers ------------------------------------------------------------------------------


def test_an_abandoned_claim_is_taken_over_after_its_lease(box: Outbox) -> None:
    message = box.post("C0POLAND", "hello")
    with box.db.session() as session:  # a process claims it, then dies
        [claimed] = outbox.claim_due(
            session, now=box.clock.now(), lease=timedelta(seconds=60), lane_interval=timedelta(0)
        )
    assert claimed.id == message
    worker = box.worker()
    assert worker.drain() == 0
    box.advance(59)
    assert worker.drain() == 0
    box.advance(2)
    assert worker.drain() == 1
    assert box.texts("C0POLAND") == ["hello"]
    assert box.row(message).attempts == 2


def test_two_workers_deliver_each_message_exactly_once(box: Outbox, database_url: str) -> None:
    channels = [f"C0LANE{n}" for n in range(10)]
    for n in range(5):
        for channel in channels:
            box.post(channel, f"{channel} #{n}")
    second_db = Database.from_url(database_url)  # like a second process: its own engine
    workers = [box.worker(batch_size=3), box.worker(batch_size=3, db=second_db)]
    start = threading.Barrier(len(workers))
    errors: list[BaseException] = []
    attempted = [0] * len(workers)

    def run(index: int, worker: OutboxWorker) -> None:
        try:
            start.wait()
            for _ in range(200):
                attempted[index] += worker.drain()
                with box.db.session() as session:
                    if outbox.pending_count(session) == 0:
                        return
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    second_db.dispose()

    assert errors == []
    assert sum(attempted) == 50, attempted  # no message was even attempted twice
    calls = box.slack.calls("chat.postMessage", include_failed=True)
    texts = [call.params["text"] for call in calls]
    assert len(texts) == 50
    assert len(set(texts)) == 50
    for channel in channels:
        assert box.texts(channel) == [f"{channel} #{n}" for n in range(5)]
    assert all(m.status == OutboxStatus.SENT and m.attempts == 1 for m in box.rows())
