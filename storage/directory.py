"""Who is who: roles, liaison assignments and the channels linked to countries."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import delete, select
from sqlmodel import Session, col

from storage.lean import Statements
from storage.models import ChannelLink, LiaisonAssignment, Role, UserRole


def role_of(session: Session, user_id: str) -> UserRole | None:
    return session.get(UserRole, user_id)


def role_name(session: Session, user_id: str) -> str | None:
    """The role granted to `user_id` (a plain read: every recording command asks)."""
    row = Statements(session).one("SELECT role FROM user_role WHERE user_id = ?", (user_id,))
    return None if row is None else str(row[0])


def users_with_role(session: Session) -> Sequence[UserRole]:
    return (
        session.execute(select(UserRole).order_by(col(UserRole.role), col(UserRole.user_id))).scalars().all()
    )


_STANDING = (
    "SELECT kind, value FROM (SELECT 0 AS kind, role AS value, 0 AS id FROM user_role WHERE user_id = ? "
    "UNION ALL SELECT 1, user_id, id FROM liaison_assignment WHERE country = ?) AS found ORDER BY kind, id"
)


# Whether `user_id` may not record `country`'s movements: not ops or admin in Liaison, and the
# country has liaison officers, none of them the user (commands.permissions.require_can_record).
_MAY_NOT_RECORD = (
    "NOT EXISTS (SELECT 1 FROM user_role WHERE user_id = ? AND role IN (?, ?)) "
    "AND EXISTS (SELECT 1 FROM liaison_assignment WHERE country = ?) "
    "AND NOT EXISTS (SELECT 1 FROM liaison_assignment WHERE country = ? AND user_id = ?)"
)


def may_not_record(user_id: str, country: str) -> tuple[str, tuple[str, ...]]:
    """The SQL condition (storage.gates) true when `user_id`'s granted role and `country`'s
    liaisons do not let the user record the country's movements."""
    return _MAY_NOT_RECORD, (user_id, Role.ADMIN.value, Role.OPS.value, country, country, user_id)


def standing_of(session: Session, user_id: str, country: str) -> tuple[str | None, list[str]]:
    """`user_id`'s role and `country`'s liaison officers, in one plain statement (every recording
    command asks both)."""
    return standing_soon(session, user_id, country)()


def standing_soon(session: Session, user_id: str, country: str) -> Callable[[], tuple[str | None, list[str]]]:
    """`standing_of`, read with the statements queued after it (storage.lean): call the result for
    the answer."""
    rows = Statements(session).read_later(_STANDING, (user_id, country))

    def answer() -> tuple[str | None, list[str]]:
        role: str | None = None
        liaisons: list[str] = []
        for kind, value in rows():
            if kind == 0:
                role = str(value)
            else:
                liaisons.append(str(value))
        return role, liaisons

    return answer


def liaisons_of(session: Session, country: str) -> list[str]:
    rows = Statements(session).all(
        "SELECT user_id FROM liaison_assignment WHERE country = ? ORDER BY id", (country,)
    )
    return [str(user_id) for (user_id,) in rows]


def countries_of(session: Session, user_id: str) -> list[str]:
    query = select(col(LiaisonAssignment.country)).where(col(LiaisonAssignment.user_id) == user_id)
    return sorted(session.execute(query).scalars().all())


def assignments(session: Session, country: str | None = None) -> Sequence[LiaisonAssignment]:
    query = select(LiaisonAssignment).order_by(col(LiaisonAssignment.country), col(LiaisonAssignment.id))
    if country is not None:
        query = query.where(col(LiaisonAssignment.country) == country)
    return session.execute(query).scalars().all()


def unassign(session: Session, user_id: str, country: str) -> bool:
    result = session.execute(
        delete(LiaisonAssignment).where(
            col(LiaisonAssignment.user_id) == user_id, col(LiaisonAssignment.country) == country
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def link_of(session: Session, channel_id: str) -> ChannelLink | None:
    return session.get(ChannelLink, channel_id)


def links(session: Session, country: str | None = None) -> Sequence[ChannelLink]:
    query = select(ChannelLink).order_by(col(ChannelLink.country), col(ChannelLink.channel_id))
    if country is not None:
        query = query.where(col(ChannelLink.country) == country)
    return session.execute(query).scalars().all()
