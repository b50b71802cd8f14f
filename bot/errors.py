"""Unexpected errors are logged with an id; the user sees the id and a calm message, never a trace."""

from __future__ import annotations

import logging
import secrets

from commands.blocks import context, section
from commands.common import Reply

log = logging.getLogger("liaison.errors")


def unexpected_error_reply(error: BaseException, where: str) -> Reply:
    error_id = secrets.token_hex(4)
    log.error("error %s in %s: %s", error_id, where, type(error).__name__, exc_info=error)
    message = (
        f":x: Something went wrong on our side and nothing was recorded (error id `{error_id}`). "
        "Please try again; if it happens again, give the operations centre this id."
    )
    return Reply(text=message, blocks=[section(message), context("The full details are in Liaison's log.")])
