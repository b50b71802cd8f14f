"""Noticing, per transaction, that something shown on the Home board changed.

A flush that writes a movement, a pledge, a notice, an acknowledgement or a change of who is who
marks the session; the command dispatcher then marks the boards stale in the same transaction
(storage.home_boards), and a background job refreshes recent visitors' boards.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession

from storage.models import (
    Acknowledgement,
    AlertNotice,
    ChannelLink,
    LiaisonAssignment,
    Movement,
    Pledge,
    UserRole,
)

BOARD_CHANGED = "liaison.board_changed"
_SHOWN_ON_BOARD = (Movement, Pledge, AlertNotice, Acknowledgement, LiaisonAssignment, UserRole, ChannelLink)


@event.listens_for(OrmSession, "after_flush")
def _mark_board_changes(session: OrmSession, _context: Any) -> None:
    touched = [*session.new, *session.dirty, *session.deleted]
    if any(isinstance(row, _SHOWN_ON_BOARD) for row in touched):
        session.info[BOARD_CHANGED] = True


def board_changed(session: OrmSession) -> bool:
    return bool(session.info.get(BOARD_CHANGED))
