"""What the operations centre is told when Slack refuses a message for good, or when delivery as a
whole is degraded (credentials, scopes) — and what happens when the ops channel itself refuses."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from bot.outbox_jobs import JOB_METHODS
from bot.outbox_worker import OPS_CHANNEL_ISSUE, FailureHook, IssueHook
from bot.slack_errors import advice_for
from commands.blocks import Block, escape, section
from commands.common import mention
from storage import outbox
from storage.models import OutboxMessage

log = logging.getLogger(__name__)

FAILURE_REPORT = "failure_report"
PLAIN_FALLBACK = "plain_fallback"
ISSUE_REPORT = "issue_report"


def delivery_failure_report(message: OutboxMessage, error: str) -> tuple[str, list[Block]]:
    """What ops read when a message can never be delivered (e.g. Liaison is not in the channel)."""
    code = error.split(":", 1)[0]
    if message.method == outbox.UPLOAD_FILE:
        payload = outbox.payload_of(message)
        to = f"<#{payload['channel']}>" if payload.get("channel") else mention(str(payload.get("user", "")))
        what = f"the file `{escape(str(payload.get('filename', '')))}` to {to}"
    else:
        lane = message.lane
        what = "a message to " + (f"<#{lane}>" if lane[:1] in ("C", "G", "D") else f"`{escape(lane)}`")
    text = f":warning: Liaison could not deliver {what}: `{escape(error)}`. {advice_for(code)}"
    return text, [section(text)]


def job_failure_report(message: OutboxMessage, error: str) -> tuple[str, list[Block]]:
    """What ops read when work queued for after a command (an export) failed for good."""
    payload = outbox.payload_of(message)
    what = f"the export for {escape(str(payload.get('what', '')))} requested by {mention(str(payload.get('user', '')))}"
    text = (
        f":warning: Liaison could not build {what} (`{escape(error)}`); nothing was sent. "
        "See Liaison's log; the export can be asked for again."
    )
    return text, [section(text)]


def report_failures_to(ops_channel: str | None) -> FailureHook:
    """Tell the operations centre about every message that can never be delivered.

    When the ops channel is the one refusing, a short plain-text note is tried there (a rich report
    can fail where plain text does not, e.g. `msg_too_long`); when even that fails, or no ops channel
    is configured, the log says it loudly and /healthz reports `degraded`.
    """

    def report(session: Session, message: OutboxMessage, error: str, now: datetime) -> None:
        where = f"{message.method} to {message.lane}"
        if message.method == outbox.RESPONSE_URL:
            # A reply to one user's command whose response URL expired: that user was answered
            # in the acknowledgement already; nobody else needs the note.
            log.warning("a delayed reply (%s) could not be delivered: %s", where, error)
            return
        if not ops_channel:
            log.error("UNDELIVERED %s: %s (set LIAISON_OPS_CHANNEL to have ops told)", where, error)
            return
        if message.lane != ops_channel:
            describe = job_failure_report if message.method in JOB_METHODS else delivery_failure_report
            text, blocks = describe(message, error)
            outbox.post_message(
                session, ops_channel, text=text, blocks=blocks, now=now, purpose=FAILURE_REPORT
            )
            return
        if message.purpose != PLAIN_FALLBACK:
            note = (
                f":warning: Liaison could not deliver a message to this channel ({error[:200]}). "
                "See Liaison's log."
            )
            outbox.post_message(
                session, ops_channel, text=note, now=now, priority=outbox.URGENT, purpose=PLAIN_FALLBACK
            )
        log.error("UNDELIVERED to the ops channel %s (%s): %s", ops_channel, where, error)
        outbox.record_issue(
            session, OPS_CHANNEL_ISSUE, f"the ops channel {ops_channel} refuses messages: {error}", now=now
        )

    return report


def report_issues_to(ops_channel: str | None) -> IssueHook:
    """Tell ops once when delivery becomes degraded (the note waits in the outbox if need be)."""

    def report(session: Session, key: str, detail: str, now: datetime) -> None:
        if not ops_channel:
            return
        text = f":rotating_light: Liaison's Slack delivery is degraded: {escape(detail)}"
        outbox.post_message(
            session,
            ops_channel,
            text=text,
            blocks=[section(text)],
            now=now,
            priority=outbox.URGENT,
            purpose=ISSUE_REPORT,
        )

    return report
