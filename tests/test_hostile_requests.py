"""The hostile corpus: unsigned, forged, stale, replayed and malformed requests against the real WSGI
app. Each must get its status and answer, store nothing, send nothing to Slack, log no traceback
and no body."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel

from commands import alert, duplicates
from storage import models
from tests.support.bot import RunningBot, running_bot
from tests.support.fixtures import TEST_SIGNING_SECRET
from tests.support.signing import FORM_CONTENT_TYPE, JSON_CONTENT_TYPE, SlackRequestFactory
from tests.support.slack_standin import SlackStandIn

UNAUTHORIZED = (401, "invalid request signature")
MALFORMED = (400, "malformed Slack request")
STORED_TABLES: list[type[SQLModel]] = [
    models.Movement, models.Pledge, models.CommandLog, models.PendingCommand, models.ProcessedEvent,
    models.OutboxMessage, models.UserRole, models.LiaisonAssignment, models.ChannelLink,
    models.AlertNotice, models.NoticeDelivery, models.Acknowledgement, models.SeenRequest,
]  # fmt: skip


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return (
        "v0="
        + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    )


@dataclass
class Forge:
    """Builds request bodies like Slack's, then breaks them; signs with the bot's clock."""

    bot: RunningBot

    @property
    def factory(self) -> SlackRequestFactory:
        return self.bot.client.factory

    @property
    def now(self) -> int:
        return int(self.bot.clock.now().timestamp())

    def command(self, typed: str = "poland 10", **changes: str | None) -> bytes:
        fields = dict(parse_qsl(self.factory.slash_command("/arrivals", typed), keep_blank_values=True))
        for key, value in changes.items():
            if value is None:
                fields.pop(key, None)
            else:
                fields[key] = value
        return urlencode(fields).encode()

    def action_payload(self, action_id: str = alert.ACTION_ACK, value: str = "1") -> dict[str, Any]:
        form = dict(parse_qsl(self.factory.block_actions(action_id, value)))
        payload = json.loads(form["payload"])
        assert isinstance(payload, dict)
        return payload

    def action(self, mutate: Callable[[dict[str, Any]], object], **kwargs: str) -> bytes:
        payload = self.action_payload(**kwargs)
        mutate(payload)
        return urlencode({"payload": json.dumps(payload)}).encode()

    def event(self, mutate: Callable[[dict[str, Any]], object] = lambda _: None) -> bytes:
        event = {"type": "app_home_opened", "user": "U0LIAISON1", "tab": "home", "event_ts": "1.2"}
        body = json.loads(self.factory.event_callback(event, event_id="Ev0HOSTILE"))
        mutate(body)
        return json.dumps(body).encode()

    def signed(
        self, body: bytes, content_type: str | None = FORM_CONTENT_TYPE, *, offset: int = 0
    ) -> tuple[bytes, dict[str, str]]:
        stamp = str(self.now + offset)
        headers = {
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": sign(TEST_SIGNING_SECRET, stamp, body),
        }
        if content_type is not None:
            headers["Content-Type"] = content_type
        return body, headers

    def with_headers(
        self, body: bytes, content_type: str = FORM_CONTENT_TYPE, **headers: str
    ) -> tuple[bytes, dict[str, str]]:
        names = {"timestamp": "X-Slack-Request-Timestamp", "signature": "X-Slack-Signature"}
        return body, {"Content-Type": content_type, **{names[k]: v for k, v in headers.items()}}


Request = tuple[bytes, dict[str, str]]


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Forge], Request]
    expected: tuple[int, str]


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """Set (or with `...`, delete) a dotted path in a payload."""

    def mutate(payload: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = payload
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is ...:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _stale(f: Forge, offset: int) -> Request:
    return f.signed(f.command(), offset=offset)


def _tampered(f: Forge) -> Request:
    _, headers = f.signed(f.command("poland 10"))
    return f.command("poland 4000"), headers


def _other_secret(f: Forge) -> Request:
    body = f.command()
    stamp = str(f.now)
    return f.with_headers(body, timestamp=stamp, signature=sign("not-the-secret", stamp, body))


def _swapped_timestamp(f: Forge) -> Request:
    body = f.command()
    return f.with_headers(
        body, timestamp=str(f.now - 1), signature=sign(TEST_SIGNING_SECRET, str(f.now), body)
    )


def _upper_hex(f: Forge) -> Request:
    body, headers = f.signed(f.command())
    headers["X-Slack-Signature"] = "v0=" + headers["X-Slack-Signature"][3:].upper()
    return body, headers


def _version(f: Forge) -> Request:
    body, headers = f.signed(f.command())
    headers["X-Slack-Signature"] = "v1=" + headers["X-Slack-Signature"][3:]
    return body, headers


def _unsigned(
    body: Callable[[Forge], bytes], content_type: str = FORM_CONTENT_TYPE
) -> Callable[[Forge], Request]:
    return lambda f: f.with_headers(body(f), content_type)


def _signed(
    body: Callable[[Forge], bytes], content_type: str | None = FORM_CONTENT_TYPE
) -> Callable[[Forge], Request]:
    return lambda f: f.signed(body(f), content_type)


def _bad_timestamp(stamp: str) -> Callable[[Forge], Request]:
    def build(f: Forge) -> Request:
        body = f.command()
        return f.with_headers(body, timestamp=stamp, signature=sign(TEST_SIGNING_SECRET, stamp, body))

    return build


def _payload(raw: str) -> Callable[[Forge], bytes]:
    return lambda _: urlencode({"payload": raw}).encode()


def _text(value: str) -> Callable[[Forge], bytes]:
    return lambda _: value.encode()


CASES = [
    # -- not Slack's: refused before anything is parsed -----------------------------------------
    Case("unsigned command", _unsigned(lambda f: f.command()), UNAUTHORIZED),
    Case("unsigned {x as json", _unsigned(_text("{x"), JSON_CONTENT_TYPE), UNAUTHORIZED),
    Case("unsigned payload=%7Bbad", _unsigned(_text("payload=%7Bbad")), UNAUTHORIZED),
    Case("unsigned []", _unsigned(_text("[]"), JSON_CONTENT_TYPE), UNAUTHORIZED),
    Case("unsigned invalid utf-8", _unsigned(lambda _: b"text=\xff\xfe\xc3("), UNAUTHORIZED),
    Case("unsigned 900 KB", _unsigned(lambda _: b"text=" + b"A" * 900_000), UNAUTHORIZED),
    Case("unsigned empty body", _unsigned(lambda _: b""), UNAUTHORIZED),
    Case(
        "unsigned url_verification",
        _unsigned(lambda f: f.factory.url_verification("c").encode(), JSON_CONTENT_TYPE),
        UNAUTHORIZED,
    ),
    Case("unsigned event", _unsigned(lambda f: f.event(), JSON_CONTENT_TYPE), UNAUTHORIZED),
    Case("unsigned button", _unsigned(lambda f: f.action(lambda _: None)), UNAUTHORIZED),
    Case("signature only", lambda f: f.with_headers(f.command(), signature="v0=" + "0" * 64), UNAUTHORIZED),
    Case("timestamp only", lambda f: f.with_headers(f.command(), timestamp=str(f.now)), UNAUTHORIZED),
    Case(
        "empty signature",
        lambda f: f.with_headers(f.command(), timestamp=str(f.now), signature=""),
        UNAUTHORIZED,
    ),
    Case(
        "zero signature",
        lambda f: f.with_headers(f.command(), timestamp=str(f.now), signature="v0=" + "0" * 64),
        UNAUTHORIZED,
    ),
    Case(
        "garbage signature",
        lambda f: f.with_headers(f.command(), timestamp=str(f.now), signature="hello"),
        UNAUTHORIZED,
    ),
    Case("other secret", _other_secret, UNAUTHORIZED),
    Case("tampered body", _tampered, UNAUTHORIZED),
    Case("timestamp swapped", _swapped_timestamp, UNAUTHORIZED),
    Case("upper-case hex", _upper_hex, UNAUTHORIZED),
    Case("signature version v1", _version, UNAUTHORIZED),
    Case("non-numeric timestamp", _bad_timestamp("abc"), UNAUTHORIZED),
    Case("timestamp 1e9", _bad_timestamp("1e9"), UNAUTHORIZED),
    Case("negative timestamp", _bad_timestamp("-5"), UNAUTHORIZED),
    Case("timestamp with a space", _bad_timestamp(" 1784530800"), UNAUTHORIZED),
    Case("fractional timestamp", _bad_timestamp("1784530800.5"), UNAUTHORIZED),
    Case("20-digit timestamp", _bad_timestamp("99999999999999999999"), UNAUTHORIZED),
    Case("hexadecimal timestamp", _bad_timestamp("0x6a5f0f70"), UNAUTHORIZED),
    Case("stale by 301 s", lambda f: _stale(f, -301), UNAUTHORIZED),
    Case("an hour old", lambda f: _stale(f, -3600), UNAUTHORIZED),
    Case("301 s in the future", lambda f: _stale(f, 301), UNAUTHORIZED),
    Case(
        "signed body plus a newline",
        lambda f: (f.signed(f.command())[0] + b"\n", f.signed(f.command())[1]),
        UNAUTHORIZED,
    ),
    # -- signed, but not what Slack sends: a clean 400 -------------------------------------------
    Case("signed {x as json", _signed(_text("{x"), JSON_CONTENT_TYPE), MALFORMED),
    Case("signed []", _signed(_text("[]"), JSON_CONTENT_TYPE), MALFORMED),
    Case("signed json null", _signed(_text("null"), JSON_CONTENT_TYPE), MALFORMED),
    Case("signed json string", _signed(_text('"x"'), JSON_CONTENT_TYPE), MALFORMED),
    Case("signed deep nesting", _signed(_text("[" * 100_000), JSON_CONTENT_TYPE), MALFORMED),
    Case("signed payload=%7Bbad", _signed(_text("payload=%7Bbad")), MALFORMED),
    Case("signed payload=[]", _signed(_payload("[]")), MALFORMED),
    Case("signed invalid utf-8", _signed(lambda _: b"text=\xff\xfe"), (400, "not UTF-8")),
    Case("form body sent as json", _signed(lambda f: f.command(), JSON_CONTENT_TYPE), MALFORMED),
    Case("json body sent as form", _signed(lambda f: f.event(), FORM_CONTENT_TYPE), MALFORMED),
    Case("text/plain body", _signed(lambda f: f.command(), "text/plain"), MALFORMED),
    Case("no content type", _signed(lambda f: f.command(), None), MALFORMED),
    Case("form without =", _signed(_text("hello")), MALFORMED),
    Case("form of nothing known", _signed(_text("token=x&team_id=T0001")), MALFORMED),
    Case("actions: []", _signed(lambda f: f.action(_set("actions", []))), MALFORMED),
    Case("actions: a string", _signed(lambda f: f.action(_set("actions", "x"))), MALFORMED),
    Case("actions: [string]", _signed(lambda f: f.action(_set("actions", ["x"]))), MALFORMED),
    Case(
        "action without action_id", _signed(lambda f: f.action(_set("actions.0.action_id", ...))), MALFORMED
    ),
    Case(
        "ack value 20 digits",
        _signed(lambda f: f.action(lambda _: None, value="99999999999999999999")),
        MALFORMED,
    ),
    Case("ack value negative", _signed(lambda f: f.action(lambda _: None, value="-1")), MALFORMED),
    Case("ack value a number object", _signed(lambda f: f.action(_set("actions.0.value", 7))), MALFORMED),
    Case(
        "record-again value text",
        _signed(lambda f: f.action(lambda _: None, action_id=duplicates.ACTION_RECORD_AGAIN, value="abc")),
        MALFORMED,
    ),
    Case(
        "discard value 2^64",
        _signed(lambda f: f.action(lambda _: None, action_id=duplicates.ACTION_DISCARD, value=str(2**64))),
        MALFORMED,
    ),
    Case("button without user", _signed(lambda f: f.action(_set("user", ...))), MALFORMED),
    Case("button user <!channel>", _signed(lambda f: f.action(_set("user.id", "<!channel>"))), MALFORMED),
    Case("button user lower-case", _signed(lambda f: f.action(_set("user.id", "u0liaison1"))), MALFORMED),
    Case("button user team X1", _signed(lambda f: f.action(_set("user.team_id", "X1"))), MALFORMED),
    Case("button channel #general", _signed(lambda f: f.action(_set("channel.id", "#general"))), MALFORMED),
    Case("button team a string id", _signed(lambda f: f.action(_set("team", {"id": "<!here>"}))), MALFORMED),
    Case("button without type", _signed(lambda f: f.action(_set("type", ...))), MALFORMED),
    Case(
        "button response_url javascript:",
        _signed(lambda f: f.action(_set("response_url", "javascript:alert(1)"))),
        MALFORMED,
    ),
    Case('"event": "x"', _signed(lambda f: f.event(_set("event", "x")), JSON_CONTENT_TYPE), MALFORMED),
    Case(
        "event without type",
        _signed(lambda f: f.event(_set("event.type", ...)), JSON_CONTENT_TYPE),
        MALFORMED,
    ),
    Case(
        "event without event_id",
        _signed(lambda f: f.event(_set("event_id", ...)), JSON_CONTENT_TYPE),
        MALFORMED,
    ),
    Case(
        "event_id with spaces",
        _signed(lambda f: f.event(_set("event_id", "Ev 1")), JSON_CONTENT_TYPE),
        MALFORMED,
    ),
    Case(
        "event user <!here>",
        _signed(lambda f: f.event(_set("event.user", "<!here>")), JSON_CONTENT_TYPE),
        MALFORMED,
    ),
    Case(
        "event team_id missing",
        _signed(lambda f: f.event(_set("team_id", ...)), JSON_CONTENT_TYPE),
        MALFORMED,
    ),
    Case(
        "url_verification without challenge",
        _signed(_text('{"type": "url_verification"}'), JSON_CONTENT_TYPE),
        MALFORMED,
    ),
    Case("command user_id=<!channel>", _signed(lambda f: f.command(user_id="<!channel>")), MALFORMED),
    Case("command without user_id", _signed(lambda f: f.command(user_id=None)), MALFORMED),
    Case("command channel #general", _signed(lambda f: f.command(channel_id="#general")), MALFORMED),
    Case("command without team_id", _signed(lambda f: f.command(team_id=None)), MALFORMED),
    Case("command team X0001", _signed(lambda f: f.command(team_id="X0001")), MALFORMED),
    Case("command enterprise <!x>", _signed(lambda f: f.command(enterprise_id="<!x>")), MALFORMED),
    Case("command without text", _signed(lambda f: f.command(text=None)), MALFORMED),
    Case("command without slash", _signed(lambda f: f.command(command="arrivals")), MALFORMED),
    Case("command 5,000 characters", _signed(lambda f: f.command("poland 1 -- " + "x" * 5000)), MALFORMED),
    Case(
        "command response_url file:",
        _signed(lambda f: f.command(response_url="file:///etc/passwd")),
        MALFORMED,
    ),
    Case("signed 1.1 MB", _signed(lambda _: b"text=" + b"A" * 1_100_000), (413, "too large")),
]


@pytest.fixture(scope="module")
def shared_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBot]:
    database = tmp_path_factory.mktemp("hostile") / "liaison.db"
    with SlackStandIn() as slack, running_bot(f"sqlite:///{database}", slack, TEST_SIGNING_SECRET) as bot:
        yield bot


def stored(bot: RunningBot) -> dict[str, int]:
    with bot.runtime.db.session() as session:
        return {
            table.__name__: int(session.execute(select(func.count()).select_from(table)).scalar_one())
            for table in STORED_TABLES
        }


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 60
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_request(shared_bot: RunningBot, case: Case, caplog: pytest.LogCaptureFixture) -> None:
    bot = shared_bot
    bot.slack.reset()
    before = stored(bot)
    body, headers = case.build(Forge(bot))
    caplog.set_level(logging.DEBUG)

    response = bot.client.post_raw(body, headers)

    status, reply = case.expected
    assert (response.status_code, reply in response.text) == (status, True), response.text
    assert "Traceback" not in response.text
    assert stored(bot) == before
    bot.deliver()
    assert bot.slack.calls() == []
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert sum(len(r.getMessage()) for r in caplog.records) < 1000, "the request was logged"


def test_ssl_check_is_answered_and_stores_nothing(shared_bot: RunningBot) -> None:
    before = stored(shared_bot)
    response = shared_bot.client.post_raw(b"ssl_check=1&token=x", {"Content-Type": FORM_CONTENT_TYPE})
    assert (response.status_code, response.text) == (200, "")
    assert stored(shared_bot) == before


def test_a_flood_of_unsigned_requests_logs_a_few_lines(
    bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for _ in range(200):
        assert bot.client.post_raw(b"{x", {"Content-Type": JSON_CONTENT_TYPE}).status_code == 401
    lines = [r for r in caplog.records if r.name.startswith(("liaison", "slack_bolt"))]
    assert 1 <= len(lines) <= 11
    assert all(len(r.getMessage()) < 200 for r in lines)


def test_a_command_whose_text_says_payload_is_recorded(bot: RunningBot) -> None:
    """Bolt alone parses a form body mentioning "payload" as empty; the checked body is used."""
    body = bot.reply("/arrivals", "poland 3 -- payload of the second flight")
    assert body["response_type"] == "in_channel"
    assert bot.count(models.Movement) == 1


# -- replays ----------------------------------------------------------------------------------


def test_a_replayed_command_is_not_recorded_again(bot: RunningBot) -> None:
    body, headers = Forge(bot).signed(Forge(bot).command("poland 10"))
    first = bot.client.post_raw(body, headers)
    assert first.json()["response_type"] == "in_channel"

    for wait in (1, 119):  # a second later, then two minutes after the original
        bot.advance(seconds=wait)
        replayed = bot.client.post_raw(body, headers)
        assert replayed.status_code == 200
        assert replayed.json() == {
            "response_type": "ephemeral",
            "text": ":repeat: This exact request was already received and handled; nothing was recorded "
            "again. To record it again, type the command again.",
        }
    assert bot.count(models.Movement) == 1
    bot.advance(minutes=4)  # past the window: the timestamp itself is refused
    assert bot.client.post_raw(body, headers).status_code == 401
    assert bot.count(models.Movement) == 1


def test_a_replayed_button_press_is_ignored(bot: RunningBot) -> None:
    forge = Forge(bot)
    body, headers = forge.signed(forge.action(lambda _: None, action_id=duplicates.ACTION_DISCARD, value="1"))
    assert bot.client.post_raw(body, headers).status_code == 200
    replayed = bot.client.post_raw(body, headers)
    assert (replayed.status_code, replayed.text) == (200, "")


def test_replays_are_refused_across_processes(
    sqlite_url: str, slack: SlackStandIn, signing_secret: str, tmp_path: Path
) -> None:
    """Two bots on one database (two `liaison serve` processes): the second refuses the first's request."""
    with (
        running_bot(sqlite_url, slack, signing_secret) as one,
        running_bot(sqlite_url, slack, signing_secret) as two,
    ):
        body, headers = Forge(one).signed(Forge(one).command("poland 10"))
        assert one.client.post_raw(body, headers).json()["response_type"] == "in_channel"
        assert "already received" in two.client.post_raw(body, headers).json()["text"]
        assert one.count(models.Movement) == 1
