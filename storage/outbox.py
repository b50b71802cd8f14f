"""The outbox: Web API calls owed to Slack, enqueued in the transaction of the change they report.

Delivery (bot.outbox_worker) claims the oldest undelivered message of each lane, so a lane (a channel)
sees its messages in order; a claim is a lease, so a second process never sends the same row while
the first is working on it, and a crashed process's claim expires and is taken over.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from storage.models import OutboxMessage, OutboxStatus

POST_MESSAGE = "chat.postMessage"
UPDATE_MESSAGE = "chat.update"
PUBLISH_VIEW = "views.publish"
RESPONSE_URL = "response_url"
UPLOAD_FILE = "files.upload"  # files_upload_v2: getUploadURLExternal, the bytes, completeUploadExternal

_OPEN = (OutboxStatus.PENDING, OutboxStatus.SENDING)


def enqueue(
    session: Session,
    *,
    method: str,
    lane: str,
    payload: dict[str, Any],
    now: datetime,
    refers_to: OutboxMessage | None = None,
) -> OutboxMessage:
    if refers_to is not None and refers_to.id is None:
        session.flush()
    message = OutboxMessage(
        method=method,
        lane=lane,
        payload=json.dumps(payload, ensure_ascii=False),
        refers_to_id=None if refers_to is None else refers_to.id,
        created_at=now,
        next_attempt_at=now,
    )
    session.add(message)
    session.flush()
    return message


def post_message(
    session: Session,
    channel: str,
    *,
    text: str,
    blocks: list[dict[str, Any]] | None = None,
    attachments: list[dict[str, Any]] | None = None,
    now: datetime,
    thread_under: OutboxMessage | None = None,
) -> OutboxMessage:
    payload: dict[str, Any] = {"channel": channel, "text": text}
    if blocks:
        payload["blocks"] = blocks
    if attachments:
        payload["attachments"] = attachments
    return enqueue(
        session, method=POST_MESSAGE, lane=channel, payload=payload, now=now, refers_to=thread_under
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
    """Edit a message we posted (its ts is known once it is delivered; the lane keeps the order)."""
    payload: dict[str, Any] = {"text": text}
    if blocks is not None:
        payload["blocks"] = blocks
    if attachments is not None:
        payload["attachments"] = attachments
    return enqueue(
        session, method=UPDATE_MESSAGE, lane=original.lane, payload=payload, now=now, refers_to=original
    )


def respond(
    session: Session, response_url: str, payload: dict[str, Any], *, lane: str, now: datetime
) -> OutboxMessage:
    return enqueue(
        session, method=RESPONSE_URL, lane=lane, payload={"url": response_url, "body": payload}, now=now
    )


def publish_home(session: Session, user_id: str, view: dict[str, Any], *, now: datetime) -> OutboxMessage:
    return enqueue(
        session,
        method=PUBLISH_VIEW,
        lane=f"home:{user_id}",
        payload={"user_id": user_id, "view": view},
        now=now,
    )


def upload_file(
    session: Session,
    *,
    channel: str | None = None,
    user: str | None = None,
    filename: str,
    title: str,
    content: bytes,
    now: datetime,
    initial_comment: str | None = None,
    after: OutboxMessage | None = None,
    in_thread: bool = False,
) -> OutboxMessage:
    """Upload a file into `channel`, or into the DM of `user` with the bot.

    Its own lane (`upload:<channel or user>`), so a slow or failing upload never holds back the
    channel's messages; `after`: delivered only once that message is (`in_thread`: in its thread).
    """
    if (channel is None) == (user is None):
        raise ValueError("upload_file needs exactly one of channel and user")
    payload: dict[str, Any] = {
        "filename": filename,
        "title": title,
        "content_base64": base64.b64encode(content).decode("ascii"),
    }
    if channel is not None:
        payload["channel"] = channel
    else:
        payload["user"] = user
    if initial_comment:
        payload["initial_comment"] = initial_comment
    if in_thread:
        payload["in_thread"] = True
    return enqueue(
        session,
        method=UPLOAD_FILE,
        lane=f"upload:{channel or user}",
        payload=payload,
        now=now,
        refers_to=after,
    )


def claim_due(
    session: Session,
    *,
    now: datetime,
    lease: timedelta,
    lane_interval: timedelta,
    limit: int = 20,
) -> list[OutboxMessage]:
    """Lease up to `limit` messages that are due, each the oldest open message of its lane.

    A lane that delivered a message within `lane_interval` waits (Slack allows about one message per
    second per channel). Call inside a transaction and commit right after.
    """
    earlier = aliased(OutboxMessage)
    recent = aliased(OutboxMessage)
    is_head_of_lane = ~exists().where(
        col(earlier.lane) == col(OutboxMessage.lane),
        col(earlier.id) < col(OutboxMessage.id),
        col(earlier.status).in_(_OPEN),
    )
    lane_is_rested = ~exists().where(
        col(recent.lane) == col(OutboxMessage.lane),
        col(recent.status) == OutboxStatus.SENT,
        col(recent.sent_at) > now - lane_interval,
    )
    is_due = or_(
        and_(col(OutboxMessage.status) == OutboxStatus.PENDING, col(OutboxMessage.next_attempt_at) <= now),
        and_(col(OutboxMessage.status) == OutboxStatus.SENDING, col(OutboxMessage.lease_until) < now),
    )
    query = (
        select(OutboxMessage)
        .where(is_due, is_head_of_lane, lane_is_rested)
        .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=OutboxMessage)
    messages = list(session.execute(query).scalars().all())
    for message in messages:
        message.status = OutboxStatus.SENDING
        message.lease_until = now + lease
        message.attempts += 1
        session.add(message)
    session.flush()
    return messages


def _finish(session: Session, message_id: int, held_lease: datetime | None, **values: Any) -> bool:
    """Apply an outcome only if our lease is still the current one (a slow worker may have lost it)."""
    result = session.execute(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.id) == message_id,
            col(OutboxMessage.status) == OutboxStatus.SENDING,
            col(OutboxMessage.lease_until) == held_lease,
        )
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def mark_sent(
    session: Session, message: OutboxMessage, *, now: datetime, channel: str | None, ts: str | None
) -> bool:
    return _finish(
        session,
        _id(message),
        message.lease_until,
        status=OutboxStatus.SENT,
        sent_at=now,
        slack_channel=channel,
        slack_ts=ts,
        lease_until=None,
        last_error=None,
    )


def mark_retry(session: Session, message: OutboxMessage, *, at: datetime, error: str) -> bool:
    return _finish(
        session,
        _id(message),
        message.lease_until,
        status=OutboxStatus.PENDING,
        next_attempt_at=at,
        lease_until=None,
        last_error=error[:500],
    )


def mark_failed(session: Session, message: OutboxMessage, *, now: datetime, error: str) -> bool:
    return _finish(
        session,
        _id(message),
        message.lease_until,
        status=OutboxStatus.FAILED,
        sent_at=now,
        lease_until=None,
        last_error=error[:500],
    )


def _id(message: OutboxMessage) -> int:
    assert message.id is not None
    return message.id


def payload_of(message: OutboxMessage) -> dict[str, Any]:
    data = json.loads(message.payload)
    assert isinstance(data, dict)
    return data


def get(session: Session, message_id: int) -> OutboxMessage | None:
    return session.get(OutboxMessage, message_id)


def pending_count(session: Session) -> int:
    query = select(func.count()).select_from(OutboxMessage).where(col(OutboxMessage.status).in_(_OPEN))
    return int(session.execute(query).scalar_one())


def failed_messages(session: Session, since: datetime | None = None) -> Sequence[OutboxMessage]:
    query = select(OutboxMessage).where(col(OutboxMessage.status) == OutboxStatus.FAILED)
    if since is not None:
        query = query.where(col(OutboxMessage.created_at) >= since)
    return session.execute(query.order_by(col(OutboxMessage.id))).scalars().all()


def next_due_at(session: Session) -> datetime | None:
    """When the next pending message becomes due (for a worker deciding how long to wait)."""
    query = select(func.min(col(OutboxMessage.next_attempt_at))).where(
        col(OutboxMessage.status) == OutboxStatus.PENDING
    )
    value = session.execute(query).scalar_one_or_none()
    return value
