"""Who may do what. A refusal says why and who can do it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from commands.common import CommandContext, PermissionDenied, mention
from commands.countries import Country
from storage import directory
from storage.gates import Condition
from storage.models import Role, UserRole


def roles_of(ctx: CommandContext, user_id: str | None = None) -> set[Role]:
    user_id = user_id or ctx.caller.user_id
    return _roles(ctx, user_id, directory.role_name(ctx.session, user_id))


def _roles(ctx: CommandContext, user_id: str, granted: str | None) -> set[Role]:
    """Admins from the configuration, plus the role granted in Liaison (if any)."""
    roles = {Role.ADMIN} if user_id in ctx.config.admins else set()
    if granted is not None:
        roles.add(Role(granted))
    return roles


def is_admin(ctx: CommandContext) -> bool:
    return Role.ADMIN in roles_of(ctx)


def is_ops(ctx: CommandContext) -> bool:
    """Ops or admin: admins can do everything ops can."""
    return bool(roles_of(ctx) & {Role.ADMIN, Role.OPS})


def _people(ctx: CommandContext, wanted: set[Role]) -> str:
    ids = {user for user in ctx.config.admins} if Role.ADMIN in wanted else set()
    ids |= {row.user_id for row in directory.users_with_role(ctx.session) if Role(row.role) in wanted}
    if not ids:
        return "nobody has that role yet (admins come from LIAISON_ADMINS)"
    return ", ".join(mention(user) for user in sorted(ids)[:10])


def ops_and_admins(ctx: CommandContext) -> str:
    """Who holds the ops or admin role, as mentions (for "who can do this" hints)."""
    return _people(ctx, {Role.ADMIN, Role.OPS})


def require_admin(ctx: CommandContext, action: str) -> None:
    if not is_admin(ctx):
        raise PermissionDenied(f"Only an admin can {action}.", hint=f"Admins: {_people(ctx, {Role.ADMIN})}.")


def require_ops(ctx: CommandContext, action: str) -> None:
    if not is_ops(ctx):
        raise PermissionDenied(
            f"Only the operations centre (ops) or an admin can {action}.",
            hint=f"Ops and admins: {_people(ctx, {Role.ADMIN, Role.OPS})}.",
        )


@dataclass(frozen=True)
class Standing:
    """Where a user stands towards one country: the one rule behind recording and acknowledging.

    A country's liaison officers act for it; ops and admins act for any country (an acknowledgement
    they give is recorded as given on the country's behalf); anyone may record movements for a
    country that has no liaison officer yet.
    """

    country: Country
    liaisons: tuple[str, ...]
    is_liaison: bool
    is_ops: bool

    def refuse(self, action: str) -> PermissionDenied:
        name = self.country.name
        if not self.liaisons:
            return PermissionDenied(
                f"{name} has no liaison officer yet: only ops or an admin can {action}.",
                hint="An admin assigns one with `/liaison assign @user <country>`.",
            )
        return PermissionDenied(
            f"Only {name}'s liaison officers, ops or an admin can {action}.",
            hint=f"{name}'s liaisons: {', '.join(mention(u) for u in self.liaisons[:10])}.",
        )


def standing(ctx: CommandContext, country: Country, user_id: str | None = None) -> Standing:
    return standing_soon(ctx, country, user_id)()


def standing_soon(
    ctx: CommandContext, country: Country, user_id: str | None = None
) -> Callable[[], Standing]:
    """`standing`, read from the database with the statements queued after it (on PostgreSQL one
    round trip carries them all): call the result for the answer."""
    who = user_id or ctx.caller.user_id
    found = directory.standing_soon(ctx.session, who, country.code)

    def answer() -> Standing:
        granted, liaisons = found()
        is_ops = bool(_roles(ctx, who, granted) & {Role.ADMIN, Role.OPS})
        return Standing(country, tuple(liaisons), who in liaisons, is_ops)

    return answer


def may_not_record(ctx: CommandContext, country: Country) -> Condition | None:
    """`require_can_record` as a condition for the server to check (storage.gates): None when the
    caller may record whatever the database says (an admin from the configuration)."""
    if ctx.caller.user_id in ctx.config.admins:
        return None
    return directory.may_not_record(ctx.caller.user_id, country.code)


def require_can_record(ctx: CommandContext, country: Country, who: Standing | None = None) -> None:
    """A country's movements: its liaisons, ops or admins — anyone while no liaison is assigned
    (`who`: the caller's standing, if already read)."""
    who = who or standing(ctx, country)
    if who.is_liaison or who.is_ops or not who.liaisons:
        return
    raise who.refuse(f"record {country.name}'s movements")


def role_row(user_id: str, role: Role, granted_by: str, ctx: CommandContext) -> UserRole:
    return UserRole(user_id=user_id, role=role, granted_by=granted_by, granted_at=ctx.now())
