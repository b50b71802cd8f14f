"""The outbox: Web API calls owed to Slack, enqueued in the transaction of the change they report.

Delivery (bot.outbox_worker) claims the oldest open message of each lane, so a lane (a channel) sees
its messages in order. A claim is a short lease held under a claim token and renewed by the worker's
heartbeat while the call is in flight: a live worker's messages are never taken over, a dead worker's
are taken over as soon as its lease lapses. A post taken over from a dead worker, or whose call timed
out, is *uncertain*: it is looked up in the channel before it may be posted again.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Select, and_, bindparam, case, delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from storage import files
from storage.models import OutboxMessage, OutboxStatus, ServiceIssue, SlackMethodPause
from storage.types import UTCDateTime

POST_MESSAGE = "chat.postMessage"
UPDATE_MESSAGE = "chat.update"
PUBLISH_VIEW = "views.publish"
RESPONSE_URL = "response_url"
UPLOAD_FILE = "files.upload"  # files_upload_v2: getUploadURLExternal, the bytes, completeUploadExternal
# Not a Slack call: work done after a command's acknowledgement (bot/outbox_jobs.jobs) that queues
# the calls it needs in the transaction marking it done. The outbox gives it durability, one worker
# at a time (the lease) and retries.
BUILD_EXPORT = "liaison.build_export"

# Priorities: higher goes first when several lanes are due (alert notices before routine replies).
ROUTINE = 0
URGENT = 10

_OPEN = (OutboxStatus.PENDING, OutboxStatus.SENDING)
# Posting twice is visible to people; an edit, a Home publish or a reply to a response URL is not
# (or cannot be checked): only posts are reconciled after an uncertain outcome.
RECONCILED_METHODS = frozenset({POST_MESSAGE})


ENQUEUED = "liaison.outbox_enqueued"  # set in `session.info` when this session enqueued a message


def enqueued_in(session: Session) -> bool:
    """Whether this unit of work enqueued anything (the worker need not be woken otherwise)."""
    return bool(session.info.get(ENQUEUED))


def enqueue(
    session: Session,
    *,
    method: str,
    lane: str,
    payload: dict[str, Any],
    now: datetime,
    refers_to: OutboxMessage | None = None,
    priority: int = ROUTINE,
    purpose: str | None = None,
) -> OutboxMessage:
    if refers_to is not None and refers_to.id is None:
        session.flush()
    message = _message(method, lane, payload, now, priority=priority, purpose=purpose)
    message.refers_to_id = None if refers_to is None else refers_to.id
    session.add(message)
    session.flush()
    session.info[ENQUEUED] = True
    return message


def _message(
    method: str, lane: str, payload: dict[str, Any], now: datetime, *, priority: int, purpose: str | None
) -> OutboxMessage:
    return OutboxMessage(
        method=method,
        lane=lane,
        payload=json.dumps(payload, ensure_ascii=False),
        priority=priority,
        purpose=purpose,
        idem_key=uuid.uuid4().hex,
        created_at=now,
        next_attempt_at=now,
    )


def post_message(
    session: Session,
    channel: str,
    *,
    text: str,
    blocks: list[dict[str, Any]] | None = None,
    attachments: list[dict[str, Any]] | None = None,
    now: datetime,
    thread_under: OutboxMessage | None = None,
    priority: int = ROUTINE,
    purpose: str | None = None,
) -> OutboxMessage:
    payload: dict[str, Any] = {"channel": channel, "text": text}
    if blocks:
        payload["blocks"] = blocks
    if attachments:
        payload["attachments"] = attachments
    return enqueue(
        session,
        method=POST_MESSAGE,
        lane=channel,
        payload=payload,
        now=now,
        refers_to=thread_under,
        priority=priority,
        purpose=purpose,
    )


def update_message(
    session: Session,
    original: OutboxMessage,
    *,
    text: str,
    blocks: list[dict[str, Any]] | None = None,
    attachments: list[dict[str, Any]] | None = None,
    now: datetime,
) -> OutboxMessage:
    """Edit a message we posted (its ts is known once it is delivered; the lane keeps the order).

    An edit still waiting to be sent is superseded by this one: the message shows the latest state
    after one call, however many changes came in meanwhile.
    """
    payload: dict[str, Any] = {"text": text}
    if blocks is not None:
        payload["blocks"] = blocks
    if attachments is not None:
        payload["attachments"] = attachments
    if original.id is not None:
        _supersede(
            session,
            col(OutboxMessage.method) == UPDATE_MESSAGE,
            col(OutboxMessage.refers_to_id) == original.id,
        )
    return enqueue(
        session,
        method=UPDATE_MESSAGE,
        lane=original.lane,
        payload=payload,
        now=now,
        refers_to=original,
        priority=original.priority,
    )


def respond(
    session: Session, response_url: str, payload: dict[str, Any], *, lane: str, now: datetime
) -> OutboxMessage:
    return enqueue(
        session, method=RESPONSE_URL, lane=lane, payload={"url": response_url, "body": payload}, now=now
    )


def publish_home(session: Session, user_id: str, view: dict[str, Any], *, now: datetime) -> OutboxMessage:
    """Publish a user's Home tab; a publish still waiting for this user is superseded by this one."""
    [message] = publish_homes(session, {user_id: view}, now=now)
    return message


def build_export(
    session: Session, *, user: str, country: str | None, what: str, zone: str, stamp: str, now: datetime
) -> OutboxMessage:
    """Build the CSV exports (storage.exports) for `user` once this transaction commits, then upload
    them to their DM with the bot; `what` names the scope ("all countries", "Spain")."""
    payload = {"user": user, "country": country, "what": what, "zone": zone, "stamp": stamp}
    return enqueue(session, method=BUILD_EXPORT, lane=f"export:{user}", payload=payload, now=now)


def publish_homes(
    session: Session, views: dict[str, dict[str, Any]], *, now: datetime
) -> list[OutboxMessage]:
    """`publish_home` for many users (user id → view) at once: one statement supersedes their
    publishes still waiting, one flush queues the new ones (the Home refresher, in the writer's turn)."""
    if not views:
        return []
    lanes = {user_id: f"home:{user_id}" for user_id in views}
    _supersede(
        session, col(OutboxMessage.method) == PUBLISH_VIEW, col(OutboxMessage.lane).in_(lanes.values())
    )
    messages = [
        _message(
            PUBLISH_VIEW,
            lanes[user_id],
            {"user_id": user_id, "view": view},
            now,
            priority=ROUTINE,
            purpose=None,
        )
        for user_id, view in views.items()
    ]
    session.add_all(messages)
    session.flush()
    session.info[ENQUEUED] = True
    return messages


def _supersede(session: Session, *conditions: Any) -> None:
    session.execute(
        update(OutboxMessage)
        .where(*conditions, col(OutboxMessage.status) == OutboxStatus.PENDING)
        .values(status=OutboxStatus.SUPERSEDED, lease_until=None)
    )


# -- claiming ------------------------------------------------------------------------------------


def upload_file(
    session: Session,
    *,
    channel: str | None = None,
    user: str | None = None,
    filename: str,
    title: str,
    content: bytes | None = None,
    stored: str | None = None,
    now: datetime,
    initial_comment: str | None = None,
    after: OutboxMessage | None = None,
    in_thread: bool = False,
) -> OutboxMessage:
    """Upload a file into `channel`, or into the DM of `user` with the bot.

    The file is `content` (kept in the message: small files) or the key of a file `stored` beforehand
    (storage.files: large ones). Its own lane (`upload:<channel or user>`), so a slow or failing
    upload never holds back the channel's messages; `after`: delivered only once that message is
    (`in_thread`: in its thread).
    """
    if (channel is None) == (user is None):
        raise ValueError("upload_file needs exactly one of channel and user")
    if (content is None) == (stored is None):
        raise ValueError("upload_file needs exactly one of content and stored")
    payload: dict[str, Any] = {"filename": filename, "title": title}
    if content is not None:
        payload["content_base64"] = base64.b64encode(content).decode("ascii")
    else:
        payload["stored_file"] = stored
    if channel is not None:
        payload["channel"] = channel
    else:
        payload["user"] = user
    if initial_comment:
        payload["initial_comment"] = initial_comment
    if in_thread:
        payload["in_thread"] = True
    message = enqueue(
        session,
        method=UPLOAD_FILE,
        lane=f"upload:{channel or user}",
        payload=payload,
        now=now,
        refers_to=after,
    )
    if stored is not None:
        files.attach(session, stored, message)
    return message


def upload_content(session: Session, payload: dict[str, Any]) -> bytes:
    """The bytes an upload message sends (storage.files.MissingFile if its stored file is gone)."""
    stored = payload.get("stored_file")
    if stored is None:
        return base64.b64decode(payload["content_base64"])
    return files.read(session, str(stored))


@cache
def _claim_query(for_update: bool, limit: int) -> Select[OutboxMessage]:
    """`claim_due`'s query, built once: its moments are parameters (`now`, `rested_after`,
    `settled_before`). Built per call, its three aliases of the outbox table (a copy of every column
    each, in reference cycles) left ~2,800 objects for the garbage collector per delivery pass."""
    earlier = aliased(OutboxMessage)
    recent = aliased(OutboxMessage)
    original = aliased(OutboxMessage)
    now = bindparam("now", type_=UTCDateTime())
    is_head_of_lane = ~exists().where(
        col(earlier.lane) == col(OutboxMessage.lane),
        col(earlier.id) < col(OutboxMessage.id),
        col(earlier.status).in_(_OPEN),
    )
    lane_is_rested = ~exists().where(
        col(recent.lane) == col(OutboxMessage.lane),
        col(recent.status) == OutboxStatus.SENT,
        col(recent.sent_at) > bindparam("rested_after", type_=UTCDateTime()),
    )
    # An edit, a threaded reply or a file that belongs to a message waits until that message is out
    # (it may be in another lane).
    original_is_out = ~exists().where(
        col(original.id) == col(OutboxMessage.refers_to_id), col(original.status).in_(_OPEN)
    )
    method_is_paused = exists().where(
        col(SlackMethodPause.method) == col(OutboxMessage.method), col(SlackMethodPause.until) > now
    )
    lapsed_before = case(
        (
            col(OutboxMessage.method).in_(RECONCILED_METHODS),
            bindparam("settled_before", type_=UTCDateTime()),
        ),
        else_=now,
    )
    is_due = or_(
        and_(col(OutboxMessage.status) == OutboxStatus.PENDING, col(OutboxMessage.next_attempt_at) <= now),
        and_(
            col(OutboxMessage.status) == OutboxStatus.SENDING, col(OutboxMessage.lease_until) < lapsed_before
        ),
    )
    query = (
        select(OutboxMessage)
        .where(is_due, is_head_of_lane, lane_is_rested, original_is_out, ~method_is_paused)
        .order_by(
            col(OutboxMessage.priority).desc(), col(OutboxMessage.next_attempt_at), col(OutboxMessage.id)
        )
        .limit(limit)
    )
    if for_update:
        query = query.with_for_update(skip_locked=True, of=OutboxMessage)
    return query


def claim_due(
    session: Session,
    *,
    now: datetime,
    lease: timedelta,
    settle: timedelta,
    lane_interval: timedelta,
    limit: int,
) -> list[OutboxMessage]:
    """Lease up to `limit` messages that are due, each the oldest open message of its lane.

    Due: pending and its time has come, or claimed by a worker whose lease lapsed (it died or hung);
    a post taken over that way waits `settle` more (a call the dead worker made may still land) and
    is marked uncertain. A lane that delivered within `lane_interval` rests (Slack allows about one
    message per second per channel); a method Slack rate-limited is not called before its pause ends;
    a message that refers to another (an edit, a reply in its thread) waits until that one is out.
    Every message gets its own claim token. Call inside a transaction and commit right after.
    """
    query = _claim_query(session.get_bind().dialect.name == "postgresql", limit)
    moments = {"now": now, "rested_after": now - lane_interval, "settled_before": now - settle}
    messages = list(session.execute(query, moments).scalars().all())
    for message in messages:
        if message.status == OutboxStatus.SENDING and message.method in RECONCILED_METHODS:
            # Its worker vanished mid-delivery: the post may have been made.
            message.uncertain_since = message.uncertain_since or now
        message.status = OutboxStatus.SENDING
        message.lease_until = now + lease
        message.claim_token = uuid.uuid4().hex
        message.attempts += 1
        session.add(message)
    session.flush()
    return messages


def renew(session: Session, claim_tokens: Iterable[str], *, until: datetime) -> int:
    """Heartbeat: extend the leases still held under these claim tokens; returns how many."""
    tokens = list(claim_tokens)
    if not tokens:
        return 0
    result = session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.claim_token).in_(tokens), col(OutboxMessage.status) == OutboxStatus.SENDING)
        .values(lease_until=until)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _finish(session: Session, message: OutboxMessage, **values: Any) -> bool:
    """Apply an outcome only if our claim is still the current one (a hung worker may have lost it)."""
    result = session.execute(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.id) == _id(message),
            col(OutboxMessage.status) == OutboxStatus.SENDING,
            col(OutboxMessage.claim_token) == message.claim_token,
        )
        .values(lease_until=None, claim_token=None, **values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def mark_sent(
    session: Session, message: OutboxMessage, *, now: datetime, channel: str | None, ts: str | None
) -> bool:
    return _finish(
        session,
        message,
        status=OutboxStatus.SENT,
        sent_at=now,
        slack_channel=channel,
        slack_ts=ts,
        last_error=None,
        uncertain_since=None,
    )


def mark_retry(
    session: Session,
    message: OutboxMessage,
    *,
    at: datetime,
    error: str,
    uncertain_since: datetime | None = None,
    unknown_error: bool = False,
) -> bool:
    """Back to pending until `at`. `uncertain_since`: the call may have been carried out."""
    values: dict[str, Any] = {
        "status": OutboxStatus.PENDING,
        "next_attempt_at": at,
        "last_error": error[:500],
    }
    if uncertain_since is not None and message.method in RECONCILED_METHODS:
        values["uncertain_since"] = message.uncertain_since or uncertain_since
    if unknown_error:
        values["unknown_errors"] = message.unknown_errors + 1
    return _finish(session, message, **values)


def mark_failed(session: Session, message: OutboxMessage, *, now: datetime, error: str) -> bool:
    return _finish(session, message, status=OutboxStatus.FAILED, sent_at=now, last_error=error[:500])


def _id(message: OutboxMessage) -> int:
    assert message.id is not None
    return message.id


# -- rate limits and service issues -----------------------------------------------------------------


def pause_method(session: Session, method: str, *, until: datetime) -> None:
    """Slack rate-limited `method`: no process calls it again before `until`."""
    pause = session.get(SlackMethodPause, method)
    if pause is None:
        try:
            with session.begin_nested():
                session.add(SlackMethodPause(method=method, until=until))
            return
        except IntegrityError:  # another process paused it at the same moment
            pause = session.get(SlackMethodPause, method)
            assert pause is not None
    if pause.until < until:
        pause.until = until
        session.add(pause)


def record_issue(session: Session, key: str, detail: str, *, now: datetime) -> bool:
    """Note a problem of the whole installation; True when it is new (tell ops once)."""
    issue = session.get(ServiceIssue, key)
    if issue is not None:
        if issue.detail != detail[:500]:
            issue.detail = detail[:500]
            session.add(issue)
        return False
    try:
        with session.begin_nested():
            session.add(ServiceIssue(key=key, detail=detail[:500], since=now))
    except IntegrityError:
        return False  # another process noticed it first and tells ops
    return True


def clear_issue(session: Session, key: str) -> bool:
    result = session.execute(delete(ServiceIssue).where(col(ServiceIssue.key) == key))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def issues(session: Session) -> Sequence[ServiceIssue]:
    return session.execute(select(ServiceIssue).order_by(col(ServiceIssue.key))).scalars().all()


# -- reading --------------------------------------------------------------------------------------


def payload_of(message: OutboxMessage) -> dict[str, Any]:
    data = json.loads(message.payload)
    assert isinstance(data, dict)
    return data


def get(session: Session, message_id: int) -> OutboxMessage | None:
    return session.get(OutboxMessage, message_id)


def pending_count(session: Session) -> int:
    query = select(func.count()).select_from(OutboxMessage).where(col(OutboxMessage.status).in_(_OPEN))
    return int(session.execute(query).scalar_one())


def oldest_overdue(session: Session, *, now: datetime, by: timedelta) -> datetime | None:
    """When the oldest message that should have gone out more than `by` ago was created."""
    query = select(func.min(col(OutboxMessage.created_at))).where(
        col(OutboxMessage.status).in_(_OPEN), col(OutboxMessage.created_at) < now - by
    )
    value: datetime | None = session.execute(query).scalar_one_or_none()
    return value
