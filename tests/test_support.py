"""Tests of the test harness itself: Slack stand-in, signed requests, PostgreSQL fixture."""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import parse_qs

import httpx
import psycopg
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import Clock, SignatureVerifier

from tests.support.signing import SignedClient, SlackRequestFactory
from tests.support.slack_standin import BOT_USER_ID, SlackStandIn


def web_client(slack: SlackStandIn) -> WebClient:
    return WebClient(token="xoxb-test", base_url=slack.base_url)


def test_post_message_is_answered_and_recorded(slack: SlackStandIn) -> None:
    client = web_client(slack)

    first = client.chat_postMessage(channel="C0POLAND", text="hello", blocks=[{"type": "divider"}])
    second = client.chat_postMessage(channel="C0POLAND", text="again")

    assert first["ok"] is True
    assert first["channel"] == "C0POLAND"
    assert first["message"]["text"] == "hello"
    assert first["message"]["blocks"] == [{"type": "divider"}]
    assert float(second["ts"]) > float(first["ts"])
    [call, _] = slack.calls("chat.postMessage", "C0POLAND")
    assert call.token == "xoxb-test"
    assert call.params["blocks"] == [{"type": "divider"}]
    assert [m["text"] for m in slack.messages("C0POLAND")] == ["hello", "again"]


def test_auth_test_identifies_the_bot(slack: SlackStandIn) -> None:
    response = web_client(slack).auth_test()

    assert response["user_id"] == BOT_USER_ID
    assert response["team_id"] == "T0001"


def test_form_encoded_call_is_parsed(slack: SlackStandIn) -> None:
    response = web_client(slack).users_info(user="U0LIAISON1")

    assert response["user"]["id"] == "U0LIAISON1"
    assert slack.calls("users.info")[0].params["user"] == "U0LIAISON1"


def test_call_without_token_is_refused(slack: SlackStandIn) -> None:
    response = httpx.post(slack.base_url + "chat.postMessage", json={"channel": "C1", "text": "x"})

    assert response.json() == {"ok": False, "error": "not_authed"}


def test_scripted_rate_limit_raises_with_retry_after(slack: SlackStandIn) -> None:
    slack.fail("chat.postMessage", status=429, retry_after=7)
    client = web_client(slack)

    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="C0POLAND", text="too fast")

    assert excinfo.value.response.status_code == 429
    assert excinfo.value.response.headers["Retry-After"] == "7"
    assert excinfo.value.response["error"] == "ratelimited"
    assert client.chat_postMessage(channel="C0POLAND", text="later")["ok"] is True
    assert [c.status for c in slack.calls("chat.postMessage", include_failed=True)] == [429, 200]
    assert len(slack.calls("chat.postMessage")) == 1


def test_scripted_server_error(slack: SlackStandIn) -> None:
    slack.fail(status=500, times=2)
    client = web_client(slack)

    for _ in range(2):
        with pytest.raises(SlackApiError) as excinfo:
            client.chat_update(channel="C1", ts="1.1", text="x")
        assert excinfo.value.response.status_code == 500
    assert client.chat_update(channel="C1", ts="1.1", text="x")["ts"] == "1.1"


def test_scripted_error_only_hits_its_channel(slack: SlackStandIn) -> None:
    slack.fail("chat.postMessage", status=200, error="channel_not_found", channel="C0GONE")
    client = web_client(slack)

    assert client.chat_postMessage(channel="C0OTHER", text="fine")["ok"] is True
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="C0GONE", text="lost")

    assert excinfo.value.response.status_code == 200
    assert excinfo.value.response["error"] == "channel_not_found"
    assert client.chat_postMessage(channel="C0GONE", text="consumed")["ok"] is True


def test_permanent_channel_error_until_cleared(slack: SlackStandIn) -> None:
    slack.set_channel_error("C0PRIVATE", "not_in_channel")
    client = web_client(slack)

    for _ in range(2):
        with pytest.raises(SlackApiError, match="not_in_channel"):
            client.chat_postMessage(channel="C0PRIVATE", text="x")
    slack.clear_channel_error("C0PRIVATE")

    assert client.chat_postMessage(channel="C0PRIVATE", text="x")["ok"] is True


def test_response_url_posts_are_recorded(slack: SlackStandIn) -> None:
    url = slack.response_url("abc")

    response = httpx.post(url, json={"response_type": "ephemeral", "text": "done"})

    assert response.status_code == 200
    [call] = slack.calls("response_url:abc")
    assert call.params == {"response_type": "ephemeral", "text": "done"}
    assert slack.calls("response_url") == [call]


def test_response_url_failure(slack: SlackStandIn) -> None:
    slack.fail("response_url", status=500)

    assert httpx.post(slack.response_url("t1"), json={"text": "x"}).status_code == 500
    assert httpx.post(slack.response_url("t1"), json={"text": "x"}).status_code == 200
    assert len(slack.calls("response_url:t1", include_failed=True)) == 2


def test_wait_for_calls_wakes_on_a_call_from_another_thread(slack: SlackStandIn) -> None:
    client = web_client(slack)
    timer = threading.Timer(0.1, lambda: client.chat_postMessage(channel="C1", text="late"))
    timer.start()
    try:
        [call] = slack.wait_for_calls("chat.postMessage", 1, channel="C1", timeout=5)
    finally:
        timer.join()

    assert call.params["text"] == "late"


def test_wait_for_times_out_with_a_dump_of_calls(slack: SlackStandIn) -> None:
    web_client(slack).chat_postMessage(channel="C1", text="only one")
    started = time.monotonic()

    with pytest.raises(AssertionError, match=r"chat\.postMessage channel=C1"):
        slack.wait_for_calls("chat.postMessage", 2, timeout=0.2)

    assert time.monotonic() - started < 2


def test_clear_forgets_calls(slack: SlackStandIn) -> None:
    web_client(slack).chat_postMessage(channel="C1", text="x")
    slack.clear()

    assert slack.calls() == []


def test_factory_signatures_verify() -> None:
    factory = SlackRequestFactory("s3cret", clock=lambda: 1_700_000_000)
    body = factory.slash_command("/arrivals", "poland 40 <@U0OPS|ops-desk>")
    headers = factory.headers(body)
    verifier = SignatureVerifier("s3cret", clock=_FixedClock(1_700_000_010))

    assert verifier.is_valid_request(body, headers)
    assert not SignatureVerifier("other", clock=_FixedClock(1_700_000_010)).is_valid_request(body, headers)
    fields = parse_qs(body)
    assert fields["command"] == ["/arrivals"]
    assert fields["text"] == ["poland 40 <@U0OPS|ops-desk>"]
    assert fields["channel_id"] == ["C0POLAND"]


def test_block_actions_and_event_bodies_look_like_slack() -> None:
    factory = SlackRequestFactory("s3cret")

    payload = json.loads(
        parse_qs(factory.block_actions("alert_ack", "notice-17", message_ts="1.2"))["payload"][0]
    )
    event = json.loads(factory.event_callback({"type": "app_home_opened", "user": "U1"}, event_id="Ev1"))

    assert payload["type"] == "block_actions"
    assert payload["actions"][0]["action_id"] == "alert_ack"
    assert payload["actions"][0]["value"] == "notice-17"
    assert payload["container"]["message_ts"] == "1.2"
    assert payload["message"]["ts"] == "1.2"
    assert event["type"] == "event_callback"
    assert event["event_id"] == "Ev1"
    assert event["event"]["type"] == "app_home_opened"


def test_signed_client_sends_signed_requests(slack: SlackStandIn) -> None:
    """Posts to the stand-in's root, which answers 404, only to check what goes over the wire."""
    with SignedClient(slack.root_url, "s3cret") as client:
        response = client.post_event({"type": "app_home_opened"}, event_id="Ev9", retry_num=1)

    request = response.request
    assert request.url.path == "/slack/events"
    assert request.headers["X-Slack-Retry-Num"] == "1"
    assert request.headers["X-Slack-Retry-Reason"] == "http_timeout"
    assert SignatureVerifier("s3cret").is_valid_request(request.content, dict(request.headers))


@pytest.mark.postgres
def test_postgres_fixture_gives_a_working_database(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.execute("SELECT current_database()").fetchone() == (postgres_url.rsplit("/", 1)[1],)


class _FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now
