"""What every command shares: the caller, the context a handler gets, replies and user errors."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlmodel import Session

from commands.alert_levels import AlertScale, default_scale
from commands.blocks import MAX_FALLBACK_TEXT, Block, context, fit_blocks, markup_safe, section, truncate
from commands.capabilities import CapabilityVocabulary
from commands.incident_feed import IncidentProvider
from storage.clock import Clock

MAX_COMMAND_TEXT = 1000
HELP_WORDS = frozenset({"help", "?", "-h", "--help"})


@dataclass(frozen=True)
class Caller:
    user_id: str
    user_name: str = ""
    channel_id: str = ""
    channel_name: str = ""
    team_id: str = ""
    response_url: str = ""


@dataclass(frozen=True)
class CommandConfig:
    """The part of the settings that command rules depend on."""

    zone: ZoneInfo
    vocabulary: CapabilityVocabulary
    max_per_entry: int = 5000
    undo_window: timedelta = timedelta(minutes=15)
    duplicate_window: timedelta = timedelta(minutes=2)
    admins: frozenset[str] = frozenset()
    ops_channel: str | None = None
    alert_scale: AlertScale = field(default_factory=default_scale)
    ack_remind: timedelta = timedelta(minutes=15)
    escalation_channel: str | None = None
    oncall_group: str | None = None
    incident_owner_timeout: timedelta = timedelta(minutes=10)
    incident_update_timeout: timedelta = timedelta(minutes=30)
    incidents: IncidentProvider | None = None  # open incidents for digests and Home, once tracked


class ChannelMembership(Protocol):
    def bot_is_member(self, channel_id: str) -> bool | None:
        """Whether Liaison's bot user is in the channel; None when Slack could not tell us in time."""
        ...


@dataclass
class CommandContext:
    session: Session
    caller: Caller
    clock: Clock
    config: CommandConfig
    command: str
    confirmed_duplicate: bool = False
    channels: ChannelMembership | None = None  # reads Slack; None where there is no Slack (tests of rules)

    def now(self) -> datetime:
        return self.clock.now()


@dataclass
class Reply:
    """An answer to the person who typed the command; `in_channel` makes it visible to the channel."""

    text: str
    blocks: list[Block] = field(default_factory=list)
    in_channel: bool = False

    def to_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "text": truncate(markup_safe(self.text), MAX_FALLBACK_TEXT),
            "response_type": "in_channel" if self.in_channel else "ephemeral",
        }
        if self.blocks:
            message["blocks"] = fit_blocks(self.blocks)
        return message


@dataclass(frozen=True)
class LateReply:
    """A reply whose content comes from statements still queued (storage.lean): on PostgreSQL they
    reach the server with the COMMIT, in one round trip, and the reply is rendered after it.
    `resolve` renders it at once wherever the reply is needed inside the transaction."""

    render: Callable[[], Reply]


@dataclass(frozen=True)
class ReadReply:
    """A reply that only reads, however much (a report, a preview): the dispatcher renders it after
    the command's transaction, on a read-only snapshot (`Database.read_session`), so it never holds
    the writer's turn (SQLite) or a request's lock timeouts while it reads. `resolve` renders it at
    once, on the transaction's own session, wherever the reply is needed inside a transaction."""

    render: Callable[[Session], Reply]


AnyReply = Reply | LateReply | ReadReply


def resolve(reply: AnyReply, session: Session) -> Reply:
    if isinstance(reply, ReadReply):
        return reply.render(session)
    return reply.render() if isinstance(reply, LateReply) else reply


class UsageError(Exception):
    """Bad input or a refused request: shown to the caller as is (mrkdwn), nothing is stored."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def reply(self) -> Reply:
        blocks = [section(f":warning: {self.message}")]
        if self.hint:
            blocks.append(context(self.hint))
        text = self.message if not self.hint else f"{self.message}\n{self.hint}"
        return Reply(text=text, blocks=blocks)


class PermissionDenied(UsageError):
    """The caller may not do this; the message says who can."""


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Right-to-left overrides, embeddings, isolates and marks reorder what a reader sees ("\u202e04 dnalop"
# reads as "poland 40"): refused. Other invisible format characters (zero-width spaces and joiners,
# word joiner, BOM, soft hyphen, tags) are removed.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_text(text: str, command: str) -> str:
    """Checks common to every command's text, decoded from Slack's encoding: length, control and
    direction characters; removes invisible format characters; folds whitespace."""
    if len(text) > MAX_COMMAND_TEXT:
        raise UsageError(
            f"That is too long for `{command}` ({len(text):,} characters; the limit is {MAX_COMMAND_TEXT:,}).",
            hint=f"Type `{command} help` to see what it takes.",
        )
    if _CONTROL.search(text) or any(unicodedata.category(ch) == "Cs" for ch in text):
        raise UsageError(
            "That text contains control characters, which Liaison does not accept.",
            hint="Retype the command rather than pasting it.",
        )
    if any(ch in _BIDI_CONTROLS for ch in text):
        raise UsageError(
            "That text contains invisible characters that change the reading direction, "
            "which Liaison does not accept.",
            hint="Retype the command rather than pasting it.",
        )
    return " ".join(strip_format_characters(text).split())


def strip_format_characters(text: str) -> str:
    """`text` without Unicode format characters (category Cf: zero-width, joiners, BOM, bidi…)."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def local_day_start(now: datetime, zone: ZoneInfo) -> datetime:
    local = now.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def format_local_time(moment: datetime, zone: ZoneInfo, now: datetime | None = None) -> str:
    local = moment.astimezone(zone)
    if now is not None and local.date() == now.astimezone(zone).date():
        return local.strftime("%H:%M")
    return local.strftime("%d %b %H:%M")


USER_MENTION = re.compile(r"^<@([UW][A-Z0-9]{2,30})(?:\|[^>]*)?>$")


def user_from_mention(token: str) -> str | None:
    """The user id in an escaped mention (`<@U123|anna>`, as Slack sends with should_escape)."""
    match = USER_MENTION.match(token)
    return match.group(1) if match else None


def mention(user_id: str) -> str:
    """A real mention of a Slack user id we got from Slack itself (never from free text)."""
    if not re.fullmatch(r"[UW][A-Z0-9]{2,30}", user_id):
        return f"`{user_id}`"
    return f"<@{user_id}>"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    return f"{count:,} {singular if count == 1 else (plural_form or singular + 's')}"
