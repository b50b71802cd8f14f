"""The notice workflow: a change of alert level broadcast to every liaison channel, acknowledgements
edited into the notice, reminders for the silent countries and the escalation to ops.

Every message goes through the outbox, in the transaction of the change it reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from commands.alert_render import (
    StatusRow,
    escalation_message,
    level_bar,
    notice_message,
    ops_tracker,
    reminder_text,
)
from commands.blocks import Block, section
from commands.common import CommandConfig
from storage import alerts, directory, outbox
from storage.models import Acknowledgement, AlertNotice, NoticeDelivery, OutboxMessage, OutboxStatus


@dataclass(frozen=True)
class NoticeDeliveryTarget:
    channel: str
    country: str


def broadcast(
    session: Session, notice: AlertNotice, config: CommandConfig, now: datetime
) -> list[NoticeDeliveryTarget]:
    """The notice, with an Acknowledge button, to every linked channel; and a tracker to ops."""
    assert notice.id is not None
    targets = [NoticeDeliveryTarget(link.channel_id, link.country) for link in directory.links(session)]
    for target in targets:
        _deliver(session, notice, target, config, now, ack=None)
    if config.ops_channel:
        text, blocks = _ops_tracker(session, notice, config, now)
        tracker = outbox.post_message(
            session,
            config.ops_channel,
            text=text,
            blocks=blocks,
            attachments=level_bar(notice, config),
            now=now,
            priority=outbox.URGENT,
        )
        notice.ops_message_id = tracker.id
        session.add(notice)
    session.flush()
    return targets


def _deliver(
    session: Session,
    notice: AlertNotice,
    target: NoticeDeliveryTarget,
    config: CommandConfig,
    now: datetime,
    *,
    ack: Acknowledgement | None,
) -> None:
    """Post the notice to one channel and remember where, for acknowledgements and reminders."""
    assert notice.id is not None
    text, blocks = notice_message(notice, config, country=target.country, ack=ack, now=now)
    message = outbox.post_message(
        session,
        target.channel,
        text=text,
        blocks=blocks,
        attachments=level_bar(notice, config),
        now=now,
        priority=outbox.URGENT,  # alert notices go before routine messages
    )
    assert message.id is not None
    session.add(
        NoticeDelivery(
            notice_id=notice.id, country=target.country, channel_id=target.channel, message_id=message.id
        )
    )
    session.flush()


def deliver_current_to(
    session: Session, channel: str, country: str, config: CommandConfig, now: datetime
) -> bool:
    """A channel linked while a notice is current gets that notice too (a country must not miss it)."""
    notice = alerts.current_notice(session)
    if notice is None or notice.id is None:
        return False
    if any(d.channel_id == channel for d in alerts.deliveries(session, notice.id)):
        return False
    ack = alerts.acknowledgements(session, notice.id).get(country)
    _deliver(session, notice, NoticeDeliveryTarget(channel, country), config, now, ack=ack)
    _refresh_ops_tracker(session, notice, config, now)
    return True


def _ops_tracker(
    session: Session, notice: AlertNotice, config: CommandConfig, now: datetime
) -> tuple[str, list[Block]]:
    assert notice.id is not None
    countries = {d.country for d in alerts.deliveries(session, notice.id)}
    return ops_tracker(notice, config, countries, alerts.acknowledgements(session, notice.id), now)


def _refresh_ops_tracker(session: Session, notice: AlertNotice, config: CommandConfig, now: datetime) -> None:
    """Edit the ops channel's tracker of the notice to the current acknowledgement count."""
    if notice.ops_message_id is None:
        return
    tracker = outbox.get(session, notice.ops_message_id)
    if tracker is not None:
        text, blocks = _ops_tracker(session, notice, config, now)
        outbox.update_message(
            session, tracker, text=text, blocks=blocks, attachments=level_bar(notice, config), now=now
        )


def record_acknowledgement(
    session: Session,
    notice: AlertNotice,
    country: str,
    *,
    user_id: str,
    channel_id: str,
    on_behalf: bool,
    config: CommandConfig,
    now: datetime,
) -> tuple[Acknowledgement, bool]:
    """The country's acknowledgement (idempotent: the first one wins), edited into its notices and
    the ops tracker; (the acknowledgement, whether it is new)."""
    assert notice.id is not None
    ack, created = alerts.acknowledge(
        session,
        notice_id=notice.id,
        country=country,
        user_id=user_id,
        channel_id=channel_id,
        now=now,
        on_behalf=on_behalf,
    )
    if created:
        text, blocks = notice_message(notice, config, country=country, ack=ack, now=now)
        for _, original in alerts.deliveries_with_messages(session, notice.id, country):
            outbox.update_message(
                session, original, text=text, blocks=blocks, attachments=level_bar(notice, config), now=now
            )
        _refresh_ops_tracker(session, notice, config, now)
    return ack, created


def status_rows(session: Session, notice_id: int) -> list[StatusRow]:
    """Per country: its channels, its acknowledgement, and why its notice failed if it did."""
    acks = alerts.acknowledgements(session, notice_id)
    channels: dict[str, list[str]] = {}
    failures: dict[str, list[str]] = {}
    for delivery, message in alerts.deliveries_with_messages(session, notice_id):
        channels.setdefault(delivery.country, []).append(delivery.channel_id)
        if message.status == OutboxStatus.FAILED:
            failures.setdefault(delivery.country, []).append(message.last_error or "failed")
    return [
        StatusRow(country, tuple(rooms), acks.get(country), tuple(failures.get(country, ())))
        for country, rooms in channels.items()
    ]


# -- silence: reminders and escalation -----------------------------------------------------------------


def send_reminders(session: Session, config: CommandConfig, now: datetime) -> int:
    """Remind silent countries after one period, tell ops after two. Safe to run from any number of
    processes at once: each reminder and escalation is claimed in the database before it is sent."""
    notice = alerts.current_notice(session)
    if notice is None or notice.id is None:
        return 0
    if now - notice.created_at < config.ack_remind:
        return 0
    silent = _silent_deliveries(session, notice.id)
    sent = 0
    for delivery, original in silent:
        if (
            now - original.created_at >= config.ack_remind
            and delivery.reminded_at is None
            and delivery.id is not None
            and alerts.claim_reminder(session, delivery.id, now)
        ):
            liaisons = directory.liaisons_of(session, delivery.country)
            text = reminder_text(notice, config, delivery.country, liaisons, now - original.created_at)
            outbox.post_message(
                session,
                delivery.channel_id,
                text=text,
                blocks=[section(text)],
                now=now,
                thread_under=original,
            )
            sent += 1
    if config.ops_channel:
        escalated = [
            d
            for d, original in silent
            if now - original.created_at >= 2 * config.ack_remind
            and d.escalated_at is None
            and d.id is not None
            and alerts.claim_escalation(session, d.id, now)
        ]
        if escalated:
            _escalate(session, notice, escalated, config, now)
            sent += 1
    return sent


def _silent_deliveries(session: Session, notice_id: int) -> list[tuple[NoticeDelivery, OutboxMessage]]:
    """Deliveries of countries that have not acknowledged, with the message that carried each: a
    channel linked later got the notice later. A notice that never arrived is left out: ops were told
    it failed (and `/alert status` shows it), and a reminder in its thread could not arrive either."""
    acked = alerts.acknowledgements(session, notice_id)
    return [
        (delivery, message)
        for delivery, message in alerts.deliveries_with_messages(session, notice_id)
        if delivery.country not in acked and message.status != OutboxStatus.FAILED
    ]


def _escalate(
    session: Session,
    notice: AlertNotice,
    deliveries: list[NoticeDelivery],
    config: CommandConfig,
    now: datetime,
) -> None:
    assert config.ops_channel is not None
    countries = {d.country for d in deliveries}
    silent: dict[str, list[str]] = {country: [] for country in countries}
    for assignment in directory.assignments(session):
        if assignment.country in countries:
            silent[assignment.country].append(assignment.user_id)
    text, blocks = escalation_message(notice, silent, now)
    tracker = outbox.get(session, notice.ops_message_id) if notice.ops_message_id else None
    outbox.post_message(
        session,
        config.ops_channel,
        text=text,
        blocks=blocks,
        now=now,
        thread_under=tracker if tracker is not None and tracker.lane == config.ops_channel else None,
    )
