"""Who may do what. A refusal says why and who can do it."""

from __future__ import annotations

from commands.common import CommandContext, PermissionDenied, mention
from commands.countries import Country
from storage import directory
from storage.models import Role, UserRole


def roles_of(ctx: CommandContext, user_id: str | None = None) -> set[Role]:
    user_id = user_id or ctx.caller.user_id
    roles: set[Role] = set()
    if user_id in ctx.config.admins:
        roles.add(Role.ADMIN)
    row = directory.role_of(ctx.session, user_id)
    if row is not None:
        roles.add(Role(row.role))
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


def require_can_record(ctx: CommandContext, country: Country) -> None:
    """A country's movements: its liaisons, ops or admins — once any liaison is assigned to it."""
    liaisons = directory.liaisons_of(ctx.session, country.code)
    if not liaisons or ctx.caller.user_id in liaisons or is_ops(ctx):
        return
    raise PermissionDenied(
        f"Only {country.name}'s liaison officers, ops or an admin can record {country.name}'s movements.",
        hint=f"{country.name}'s liaisons: {', '.join(mention(u) for u in liaisons[:10])}.",
    )


def may_acknowledge(ctx: CommandContext, country: str, user_id: str) -> bool:
    liaisons = directory.liaisons_of(ctx.session, country)
    return not liaisons or user_id in liaisons or bool(roles_of(ctx, user_id) & {Role.ADMIN, Role.OPS})


def role_row(user_id: str, role: Role, granted_by: str, ctx: CommandContext) -> UserRole:
    return UserRole(user_id=user_id, role=role, granted_by=granted_by, granted_at=ctx.now())
