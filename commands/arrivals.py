"""`/arrivals` — personnel of a contingent arriving in the host country."""

from __future__ import annotations

from commands import movements
from commands.common import CommandContext, LateReply, Reply
from storage.models import MovementKind

COMMAND = "/arrivals"
RECORDS = True
# Its checks may run on the PostgreSQL server, with its writes (storage.gates): nothing in it treats
# a database error as an answer, so a stopped transaction always reaches Database.run_request.
OPTIMISTIC = True


def handle(text: str, ctx: CommandContext) -> Reply | LateReply:
    return movements.handle(text, MovementKind.ARRIVAL, ctx)
