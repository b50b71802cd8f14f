"""`/liaison export [country]` — the ledgers as CSV files, sent privately to the caller's DM with Liaison."""

from __future__ import annotations

from commands.blocks import context, section
from commands.common import CommandContext, Reply
from commands.parsing import country_from
from commands.permissions import require_ops
from storage import outbox
from storage.exports import EXPORT_FILES


def export(args: list[str], ctx: CommandContext) -> Reply:
    require_ops(ctx, "export the ledgers")
    country = country_from(" ".join(args)) if args else None
    now = ctx.now()
    what = country.name if country else "all countries"
    # Built after the acknowledgement, from one snapshot (bot/outbox_jobs.py): a large ledger takes
    # longer than Slack waits, and must not hold up the commands typed meanwhile.
    outbox.build_export(
        ctx.session,
        user=ctx.caller.user_id,
        country=country.code if country else None,
        what=what,
        zone=ctx.config.zone.key,
        stamp=now.astimezone(ctx.config.zone).strftime("%Y-%m-%d-%H%M"),
        now=now,
    )
    listing = ", ".join(title.lower() for _name, title in EXPORT_FILES)
    text = f":package: {len(EXPORT_FILES)} CSV files for {what} are on their way to your DM with Liaison: {listing}."
    return Reply(
        text=text,
        blocks=[
            section(text),
            context(
                "UTF-8 CSV with times in ISO 8601; opens in Excel and LibreOffice. Only you receive them. "
                "A large ledger takes a little while to write out."
            ),
        ],
    )
