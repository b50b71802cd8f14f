"""The outbox worker against the Slack stand-in, on SQLite and PostgreSQL.

Time is a FrozenClock moved by the tests; `worker.drain()` delivers whatever is due now.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from slack_sdk import WebClient
from sqlalchemy import select
from sqlmodel import Session

from bot.delivery_failures import report_failures_to, report_issues_to
from bot.outbox_worker import DeliveryPolicy, OutboxWorker
from bot.reconcile import metadata_for
from bot.runtime import build_web_client
from bot.settings import Settings
from bot.tokens import RotatingToken, TokenSource
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
        concurrency: int = 8,
        db: Database | None = None,
        api_url: str | None = None,
        timeout: int = 5,
        tokens: TokenSource | None = None,
        ops_channel: str | None = None,
        token: str = TOKEN,
    ) -> OutboxWorker:
        settings = Settings(_env_file=None, slack_api_url=api_url or self.slack.base_url)  # type: ignore[call-arg]
        http = httpx.Client(timeout=5)
        self._http.append(http)

        def on_failure(session: Session, message: OutboxMessage, error: str, now: datetime) -> None:
            assert message.id is not None
            self.failures.append(Failure(message.id, error))
            if ops_channel is not None:
                report_failures_to(ops_channel)(session, message, error, now)

        client = build_web_client(settings, token)
        client.timeout = timeout
        worker = OutboxWorker(
            db or self.db,
            client,
            self.clock,
            http=http,
            policy=replace(POLICY, lane_interval=timedelta(seconds=lane_interval), concurrency=concurrency),
            on_failure=on_failure,
            on_issue=report_issues_to(ops_channel),
            ops_channel=ops_channel,
            tokens=tokens,
            jitter=lambda: 1.0,
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

    def in_channel(self, channel: str) -> list[str]:
        """What people see in the channel (includes posts whose answer never reached us)."""
        return [m["text"] for m in self.slack.posted(channel)]

    def methods(self) -> list[str]:
        return [call.method for call in self.slack.calls(include_failed=True)]

    def issues(self) -> dict[str, str]:
        with self.db.session() as session:
            return {issue.key: issue.detail for issue in outbox.issues(session)}

    def close(self) -> None:
        for worker in self._workers:
            worker.stop()
        for http in self._http:
            http.close()
        self.db.dispose()


POLICY = DeliveryPolicy(
    lease=timedelta(seconds=6),
    heartbeat=timedelta(seconds=2),
    settle=timedelta(seconds=5),
    retry_base=timedelta(seconds=1),
    max_backoff=timedelta(seconds=10),
    credential_retry=timedelta(seconds=60),
    max_unknown_errors=5,
)


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


def test_a_post_carries_its_outbox_key_in_message_metadata(box: Outbox) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*40 on duty*"}}]
    message_id = box.post("C0POLAND", "40 on duty", blocks=blocks)
    box.worker().drain()
    [message] = box.slack.messages("C0POLAND")
    assert (message["text"], message["blocks"]) == ("40 on duty", blocks)
    key = box.row(message_id).idem_key
    assert key
    assert message["metadata"] == {"event_type": "liaison_outbox", "event_payload": {"outbox_key": key}}


def test_urgent_messages_go_before_routine_ones(box: Outbox) -> None:
    for n in range(3):
        box.post(f"C0ROUTINE{n}", f"routine {n}")
    box.post("C0NOTICE", "alert notice", priority=outbox.URGENT)
    box.worker(concurrency=1).drain()
    first = box.slack.calls("chat.postMessage")[0]
    assert first.params["text"] == "alert notice"


# -- retries --------------------------------------------------------------------------------------


def test_unavailable_then_rate_limited_then_delivered_once(box: Outbox) -> None:
    box.slack.fail("chat.postMessage", status=503, times=2, channel="C0POLAND")
    box.slack.fail("chat.postMessage", status=429, retry_after=30, channel="C0POLAND")
    worker = box.worker()
    poland = box.post("C0POLAND", "40 arrived")
    germany = box.post("C0GERMANY", "10 arrived")

    def attempts() -> list[int]:
        return [c.status for c in box.slack.calls("chat.postMessage", "C0POLAND", include_failed=True)]

    worker.drain()
    assert attempts() == [503]
    assert box.texts("C0GERMANY") == ["10 arrived"]  # another channel is not held up
    first = box.row(poland)
    assert (first.status, first.last_error) == (OutboxStatus.PENDING, "internal_error")
    assert first.uncertain_since is None  # a 503 is refused at the door: nothing to look up
    assert first.next_attempt_at == START + timedelta(seconds=1)

    box.advance(0.9)
    worker.drain()
    assert attempts() == [503]  # not due yet
    box.advance(0.1)
    worker.drain()
    assert attempts() == [503, 503]  # backoff doubles: next in 2 s
    box.advance(2)
    worker.drain()
    assert attempts() == [503, 503, 429]
    assert box.row(poland).last_error == "ratelimited"

    box.advance(29.9)
    worker.drain()
    assert attempts() == [503, 503, 429]  # Retry-After: 30 is honoured
    box.advance(0.1)
    worker.drain()
    assert attempts() == [503, 503, 429, 200]

    delivered = box.row(poland)
    assert (delivered.status, delivered.attempts, delivered.last_error) == (OutboxStatus.SENT, 4, None)
    assert delivered.sent_at == START + timedelta(seconds=33)
    assert box.in_channel("C0POLAND") == ["40 arrived"]
    box.advance(600)
    assert worker.drain() == 0
    assert box.row(germany).attempts == 1


def test_a_429_pauses_the_method_for_every_channel(box: Outbox) -> None:
    box.slack.fail("chat.postMessage", status=429, retry_after=20, channel="C0POLAND")
    worker = box.worker()
    box.post("C0POLAND", "first")
    worker.drain()
    later = box.post("C0SPAIN", "queued after the 429")
    with box.db.session() as session:
        box.slack.clear()
        edit = outbox.publish_home(session, "U1", {"type": "home", "blocks": []}, now=box.clock.now())
    worker.drain()
    # chat.postMessage rests for everyone; other methods go on.
    assert box.slack.calls("chat.postMessage", include_failed=True) == []
    assert [c.method for c in box.slack.calls()] == ["views.publish"]
    assert edit.id is not None
    box.advance(19.9)
    worker.drain()
    assert box.texts("C0SPAIN") == []
    box.advance(0.1)
    worker.drain()
    assert box.texts("C0SPAIN") == ["queued after the 429"]
    assert box.texts("C0POLAND") == ["first"]
    assert box.row(later).attempts == 1


def test_backoff_is_capped_so_delivery_resumes_within_seconds_of_an_outage(box: Outbox) -> None:
    box.slack.fail("chat.postMessage", status=503, times=12)
    worker = box.worker()
    message = box.post("C0NOTICE", "alert notice", priority=outbox.URGENT)
    waits = []
    for _ in range(12):
        worker.drain()
        row = box.row(message)
        waits.append((row.next_attempt_at - box.clock.now()).total_seconds())
        box.clock.set(row.next_attempt_at)
    worker.drain()
    assert box.texts("C0NOTICE") == ["alert notice"]
    assert waits[:5] == [1, 2, 4, 8, 10]
    assert max(waits) == 10  # Slack back: at most 10 s (jittered down) until the next try


def test_a_refused_connection_is_retried_without_a_lookup(box: Outbox) -> None:
    unreachable = box.worker(api_url="http://127.0.0.1:9/api/")  # nothing listens there
    message = box.post("C0POLAND", "hello")
    unreachable.drain()
    row = box.row(message)
    assert row.status == OutboxStatus.PENDING
    assert (row.last_error or "").startswith("network:")
    assert row.uncertain_since is None  # the request never left: posting again is safe
    box.advance(1)
    box.worker().drain()
    assert box.texts("C0POLAND") == ["hello"]
    assert box.methods() == ["chat.postMessage"]


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


@pytest.mark.parametrize(
    "error", ["no_permission", "team_access_not_granted", "restricted_action_non_threadable_channel"]
)
def test_documented_channel_errors_fail_at_once_and_are_reported(box: Outbox, error: str) -> None:
    box.slack.set_channel_error("C0PL", error)
    box.post("C0PL", "notice")
    box.worker(ops_channel="C0OPS").drain()
    assert [f.error for f in box.failures] == [error]
    [report] = box.texts("C0OPS")
    assert "<#C0PL>" in report
    assert error in report


def test_an_unknown_error_is_tried_a_few_times_then_reported_and_the_lane_goes_on(box: Outbox) -> None:
    box.slack.set_channel_error("C0PL", "brand_new_error")
    worker = box.worker(ops_channel="C0OPS")
    stuck = box.post("C0PL", "first notice")
    behind = box.post("C0PL", "second notice")
    for _ in range(10):
        worker.drain()
        if box.row(stuck).status == OutboxStatus.FAILED:
            break
        box.clock.set(box.row(stuck).next_attempt_at)
    assert box.row(stuck).attempts == 5
    assert box.clock.now() - START < timedelta(minutes=1)
    assert box.row(stuck).last_error == "brand_new_error"
    reports = box.texts("C0OPS")
    assert len(reports) == 1
    assert "brand_new_error" in reports[0]

    box.slack.clear_channel_error("C0PL")  # the channel recovers: the next notice goes out
    for _ in range(10):
        worker.drain()
        if box.row(behind).status != OutboxStatus.PENDING:
            break
        box.clock.set(box.row(behind).next_attempt_at)
    assert box.row(behind).status == OutboxStatus.SENT
    assert box.in_channel("C0PL") == ["second notice"]


def test_a_report_the_ops_channel_refuses_falls_back_to_plain_text_then_degrades(box: Outbox) -> None:
    box.slack.set_channel_error("C0PL", "not_in_channel")
    box.slack.fail("chat.postMessage", status=200, error="msg_too_long", channel="C0OPS")
    box.post("C0PL", "notice")
    worker = box.worker(ops_channel="C0OPS")
    worker.drain()
    [fallback] = box.slack.messages("C0OPS")
    assert "blocks" not in fallback
    assert "msg_too_long" in fallback["text"]
    assert "ops_channel" not in box.issues()  # the plain note got through

    box.slack.set_channel_error("C0OPS", "channel_not_found")  # and now the fallback fails too
    box.post("C0OPS", "tracker")
    worker.drain()
    assert [m.purpose for m in box.rows() if m.status == OutboxStatus.FAILED].count("plain_fallback") == 1
    assert "channel_not_found" in box.issues()["ops_channel"]

    box.slack.clear_channel_error("C0OPS")
    box.post("C0OPS", "back")
    worker.drain()
    assert "ops_channel" not in box.issues()


def test_response_url_is_retried_then_refused_for_good(box: Outbox) -> None:
    box.slack.fail("response_url", status=500)
    worker = box.worker()
    with box.db.session() as session:
        retried = outbox.respond(
            session, box.slack.response_url("a"), {"text": "ok"}, lane="response:1", now=box.clock.now()
        ).id
    worker.drain()
    assert box.slack.calls("response_url:a") == []
    box.advance(1)
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


# -- uncertain outcomes: looked up, never posted twice --------------------------------------------


def test_slack_answering_after_the_client_gave_up_is_not_posted_twice(box: Outbox) -> None:
    box.slack.delay(1.5, "chat.postMessage", times=1)  # Slack posts, then answers too late
    worker = box.worker(timeout=1)
    message = box.post("C0PL", "alert notice")
    worker.drain()
    row = box.row(message)
    assert row.status == OutboxStatus.PENDING
    assert row.uncertain_since == START
    assert row.next_attempt_at == START + POLICY.settle

    box.advance(5)
    worker.drain()
    row = box.row(message)
    assert row.status == OutboxStatus.SENT
    assert row.slack_ts == box.slack.posted("C0PL")[0]["ts"]
    assert box.in_channel("C0PL") == ["alert notice"]
    assert box.methods() == ["chat.postMessage", "conversations.history"]
    history = box.slack.calls("conversations.history")[0]
    assert history.params["include_all_metadata"] in (True, "true", "1")


def test_a_dropped_connection_after_slack_acted_is_not_posted_twice(box: Outbox) -> None:
    with box.db.session() as session:
        parent = outbox.post_message(session, "C0PL", text="notice", now=box.clock.now())
        reply = outbox.post_message(
            session, "C0PL", text="reminder", now=box.clock.now(), thread_under=parent
        )
    worker = box.worker()
    worker.run_once()  # the parent
    box.slack.drop("chat.postMessage")  # the reply is posted, the connection dies before the answer
    worker.drain()
    assert reply.id is not None
    assert box.row(reply.id).uncertain_since is not None
    box.advance(5)
    worker.drain()
    assert box.row(reply.id).status == OutboxStatus.SENT
    assert box.in_channel("C0PL") == ["notice", "reminder"]
    assert [c.method for c in box.slack.calls(include_failed=True)][-1] == "conversations.replies"


def test_a_server_error_that_did_not_post_is_posted_once_after_the_lookup(box: Outbox) -> None:
    box.slack.fail("chat.postMessage", status=500, channel="C0PL")
    message = box.post("C0PL", "notice")
    worker = box.worker()
    worker.drain()
    assert box.row(message).uncertain_since == START
    box.advance(5)
    worker.drain()
    assert box.methods() == ["chat.postMessage", "conversations.history", "chat.postMessage"]
    assert box.in_channel("C0PL") == ["notice"]
    assert box.row(message).status == OutboxStatus.SENT


def test_without_history_scope_an_uncertain_post_is_reported_not_repeated(box: Outbox) -> None:
    box.slack.fail("chat.postMessage", status=500, channel="C0PL")
    box.slack.fail("conversations.history", status=200, error="missing_scope")
    message = box.post("C0PL", "notice")
    worker = box.worker(ops_channel="C0OPS")
    worker.drain()
    box.advance(5)
    worker.drain()
    row = box.row(message)
    assert row.status == OutboxStatus.FAILED
    assert (row.last_error or "").startswith("delivery uncertain")
    assert len(box.slack.calls("chat.postMessage", "C0PL", include_failed=True)) == 1
    assert "missing_scope:history" in box.issues()
    assert any("delivery uncertain" in text for text in box.texts("C0OPS"))


def claim_as_a_process_that_dies(box: Outbox) -> list[OutboxMessage]:
    with box.db.session() as session:
        return outbox.claim_due(
            session,
            now=box.clock.now(),
            lease=POLICY.lease,
            settle=POLICY.settle,
            lane_interval=timedelta(0),
            limit=10,
        )


def test_a_claim_abandoned_after_posting_is_taken_over_and_not_posted_again(box: Outbox) -> None:
    message = box.post("C0POLAND", "hello")
    [claimed] = claim_as_a_process_that_dies(box)  # it posts, then dies before recording it
    assert claimed.id == message
    assert claimed.idem_key is not None
    WebClient(token=TOKEN, base_url=box.slack.base_url).chat_postMessage(
        channel="C0POLAND", text="hello", metadata=metadata_for(claimed.idem_key)
    )
    worker = box.worker()
    box.advance(6)  # the lease lapsed, but a call the dead process made might still land: settle
    assert worker.drain() == 0
    box.advance(5.1)
    assert worker.drain() == 1
    assert box.in_channel("C0POLAND") == ["hello"]
    row = box.row(message)
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 2)
    assert row.slack_ts == box.slack.posted("C0POLAND")[0]["ts"]


def test_a_claim_abandoned_before_posting_is_posted_once(box: Outbox) -> None:
    message = box.post("C0POLAND", "hello")
    claim_as_a_process_that_dies(box)
    box.advance(11.1)
    box.worker().drain()
    assert box.in_channel("C0POLAND") == ["hello"]
    assert box.row(message).status == OutboxStatus.SENT


def test_a_live_workers_lease_is_renewed_while_its_call_is_in_flight(box: Outbox) -> None:
    box.slack.delay(1.0, "chat.postMessage", times=1)
    fast_beats = replace(POLICY, heartbeat=timedelta(milliseconds=100))
    worker = box.worker()
    worker._policy = fast_beats  # beat often during the one slow call
    message = box.post("C0PL", "notice")
    done = threading.Event()
    thread = threading.Thread(target=lambda: (worker.drain(), done.set()))
    thread.start()
    box.slack.wait_for(lambda: len(box.slack.calls("chat.postMessage")) == 1)
    for _ in range(3):  # 12 s in all, twice the lease: only the heartbeat keeps it
        box.advance(4)
        renewed = box.clock.now() + POLICY.lease
        deadline = time.monotonic() + 5
        while box.row(message).lease_until != renewed and time.monotonic() < deadline:
            time.sleep(0.01)
        assert box.row(message).lease_until == renewed
    rival = box.worker()
    assert rival.drain() == 0  # the live worker's message is not taken over
    thread.join(10)
    assert done.is_set()
    assert box.row(message).status == OutboxStatus.SENT
    assert box.in_channel("C0PL") == ["notice"]


# -- edits, threads, Home -------------------------------------------------------------------------


def test_update_waits_for_the_original_and_edits_that_message(box: Outbox) -> None:
    box.slack.fail("chat.postMessage", status=503, channel="C0OPS")
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

    box.advance(1)
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


def test_queued_edits_of_one_message_are_coalesced_into_the_latest(box: Outbox) -> None:
    with box.db.session() as session:
        tracker = outbox.post_message(session, "C0OPS", text="0 of 46 acknowledged", now=box.clock.now())
        for n in range(1, 47):
            outbox.update_message(session, tracker, text=f"{n} of 46 acknowledged", now=box.clock.now())
    box.worker().drain()
    [edit] = box.slack.calls("chat.update")
    assert edit.params["text"] == "46 of 46 acknowledged"
    statuses = [m.status for m in box.rows() if m.method == outbox.UPDATE_MESSAGE]
    assert statuses.count(OutboxStatus.SUPERSEDED) == 45
    assert box.slack.posted("C0OPS")[0]["text"] == "46 of 46 acknowledged"


def test_a_pending_home_publish_is_superseded_by_a_newer_one(box: Outbox) -> None:
    with box.db.session() as session:
        for n in range(3):
            outbox.publish_home(
                session, "U1", {"type": "home", "blocks": [], "private_metadata": str(n)}, now=box.clock.now()
            )
    box.worker().drain()
    [publish] = box.slack.calls("views.publish")
    assert publish.params["view"]["private_metadata"] == "2"


def test_update_of_a_message_that_failed_fails_too(box: Outbox) -> None:
    box.slack.set_channel_error("C0GONE", "channel_not_found")
    with box.db.session() as session:
        original = outbox.post_message(session, "C0GONE", text="v1", now=box.clock.now())
        edit = outbox.update_message(session, original, text="v2", now=box.clock.now())
    box.worker().drain()
    assert edit.id is not None
    assert box.row(edit.id).status == OutboxStatus.FAILED
    assert box.slack.calls("chat.update", include_failed=True) == []


# -- pacing and parallel fan-out ------------------------------------------------------------------


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


def test_a_fan_out_calls_slack_for_several_channels_at_once(box: Outbox) -> None:
    box.slack.delay(0.2, "chat.postMessage")
    channels = [f"C0FAN{n:02d}" for n in range(16)]
    for channel in channels:
        box.post(channel, "alert notice", priority=outbox.URGENT)
    box.worker(concurrency=8).drain()
    assert box.slack.max_in_flight > 1
    assert box.slack.max_in_flight <= 8
    for channel in channels:
        assert box.in_channel(channel) == ["alert notice"]


# -- credentials ----------------------------------------------------------------------------------


def test_revoked_credentials_hold_messages_degrade_and_tell_ops_once(box: Outbox) -> None:
    box.slack.revoke_token(TOKEN)
    worker = box.worker(ops_channel="C0OPS")
    for channel in ("C0PL", "C0ES", "C0IT"):
        box.post(channel, "notice")
    worker.drain()
    assert box.issues()["credentials"].startswith("token_revoked")
    pending = [m for m in box.rows() if m.status == OutboxStatus.PENDING]
    assert len(pending) == 4  # three notices and one note for ops, nothing lost
    assert sum(1 for m in pending if m.lane == "C0OPS") == 1
    box.advance(60)
    worker.drain()
    assert sum(1 for m in box.rows() if m.lane == "C0OPS") == 1  # told once

    fixed = box.worker(ops_channel="C0OPS", token="xoxb-reinstalled")
    box.advance(60)
    fixed.drain()
    assert box.in_channel("C0PL") == ["notice"]
    assert "degraded" in box.in_channel("C0OPS")[0]
    assert "credentials" not in box.issues()


def test_token_rotation_renews_the_token_and_shares_it(box: Outbox, database_url: str) -> None:
    box.slack.rotate_tokens(client_id="111.222", client_secret="shh", refresh_token="xoxe-1-first")

    def rotating(db: Database) -> RotatingToken:
        return RotatingToken(
            db,
            box.clock,
            WebClient(base_url=box.slack.base_url),
            client_id="111.222",
            client_secret="shh",
            refresh_token="xoxe-1-first",
        )

    tokens = rotating(box.db)
    worker = box.worker(tokens=tokens, token="")
    box.post("C0PL", "one")
    worker.drain()
    assert box.in_channel("C0PL") == ["one"]
    assert box.slack.issued_tokens == 1
    [post] = box.slack.calls("chat.postMessage")
    assert post.token == "xoxe.xoxb-1-rotated-1"

    second_db = Database.from_url(database_url)  # another process: reads the token the first renewed
    try:
        assert rotating(second_db).current() == "xoxe.xoxb-1-rotated-1"
        assert box.slack.issued_tokens == 1

        box.advance(12 * 3600 - 9 * 60)  # less than 10 minutes left: renewed before it expires
        assert rotating(second_db).current() == "xoxe.xoxb-1-rotated-2"
        assert tokens.current() == "xoxe.xoxb-1-rotated-2"
        assert box.slack.issued_tokens == 2
    finally:
        second_db.dispose()

    box.slack.expire_token("xoxe.xoxb-1-rotated-2")  # Slack expired it early: renew and go on
    box.post("C0PL", "two")
    worker.drain()
    worker.drain()
    assert box.in_channel("C0PL") == ["one", "two"]
    assert box.slack.calls("chat.postMessage")[-1].token == "xoxe.xoxb-1-rotated-3"
    assert "credentials" not in box.issues()


# -- several workers ------------------------------------------------------------------------------


def test_two_workers_deliver_each_message_exactly_once(box: Outbox, database_url: str) -> None:
    box.slack.delay(0.05, "chat.postMessage")
    channels = [f"C0LANE{n}" for n in range(10)]
    for n in range(5):
        for channel in channels:
            box.post(channel, f"{channel} #{n}")
    second_db = Database.from_url(database_url)  # like a second process: its own engine
    workers = [box.worker(concurrency=3), box.worker(concurrency=3, db=second_db)]
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
        thread.join(60)
    second_db.dispose()

    assert errors == []
    assert sum(attempted) == 50, attempted  # no message was even attempted twice
    calls = box.slack.calls("chat.postMessage", include_failed=True)
    texts = [call.params["text"] for call in calls]
    assert len(texts) == 50
    assert len(set(texts)) == 50
    for channel in channels:
        assert box.in_channel(channel) == [f"{channel} #{n}" for n in range(5)]
    assert all(m.status == OutboxStatus.SENT and m.attempts == 1 for m in box.rows())
