"""Unexpected errors are logged with an id; the user sees the id and a calm message, never a trace.
A database too busy to answer in Slack's 3 seconds is not unexpected: the user is told to try again."""

from __future__ import annotations

import logging
import secrets

from sqlalchemy.exc import OperationalError

from commands.blocks import context, section
from commands.common import Reply, UsageError

log = logging.getLogger("liaison.errors")

# PostgreSQL: lock_not_available (lock_timeout), query_canceled (statement_timeout).
_BUSY_SQLSTATES = frozenset({"55P03", "57014"})
BUSY_MESSAGE = ":hourglass: Liaison's database is busy right now, so *nothing was recorded*."
BUSY_HINT = "Please try again in a few seconds."


def is_database_busy(error: BaseException) -> bool:
    """A lock wait ran out (SQLite's `database is locked`, PostgreSQL's lock or statement timeout)."""
    if not isinstance(error, OperationalError):
        return False
    if getattr(error.orig, "sqlstate", None) in _BUSY_SQLSTATES:
        return True
    return "database is locked" in str(error.orig) or "database table is locked" in str(error.orig)


REPLAY_MESSAGE = (
    ":repeat: This exact request was already received and handled; nothing was recorded again. "
    "To record it again, type the command again."
)


def replay_reply() -> Reply:
    return Reply(text=REPLAY_MESSAGE)


def busy_reply() -> Reply:
    return UsageError(BUSY_MESSAGE, hint=BUSY_HINT).reply()


def reply_failed_after_commit(error: BaseException, where: str) -> Reply:
    """The command's work was committed, but its answer could not be built: say so, and that it
    stands (retyping it would record it twice — the duplicate check would ask first)."""
    error_id = _logged(error, f"building the answer of {where}")
    return _error_reply(
        f":warning: Recorded, but the answer could not be shown (error id `{error_id}`). "
        "Do not type it again; check the figures with `/deployment`, and give the operations centre this id."
    )


def unexpected_error_reply(error: BaseException, where: str) -> Reply:
    if is_database_busy(error):
        log.warning("database busy in %s: %s", where, type(error).__name__)
        return busy_reply()
    error_id = _logged(error, f"in {where}")
    return _error_reply(
        f":x: Something went wrong on our side and nothing was recorded (error id `{error_id}`). "
        "Please try again; if it happens again, give the operations centre this id."
    )


def _logged(error: BaseException, where: str) -> str:
    """Log `error` with its traceback under a new short id (shown to the user instead)."""
    error_id = secrets.token_hex(4)
    log.error("error %s %s: %s", error_id, where, type(error).__name__, exc_info=error)
    return error_id


def _error_reply(message: str) -> Reply:
    return Reply(text=message, blocks=[section(message), context("The full details are in Liaison's log.")])
