"""`/liaison export [country]` — the ledgers as CSV files, sent privately to the caller's DM with Liaison."""

from __future__ import annotations

from commands.blocks import context, section
from commands.common import CommandContext, Reply, plural
from commands.parsing import country_from
from commands.permissions import require_ops
from storage import outbox
from storage.exports import export_files


def export(args: list[str], ctx: CommandContext) -> Reply:
    require_ops(ctx, "export the ledgers")
    country = country_from(" ".join(args)) if args else None
    now = ctx.now()
    stamp = now.astimezone(ctx.config.zone).strftime("%Y-%m-%d-%H%M")
    files = export_files(ctx.session, ctx.config.zone, country.code if country else None, stamp)
    what = country.name if country else "all countries"
    for file in files:
        outbox.upload_file(
            ctx.session,
            user=ctx.caller.user_id,
            filename=file.filename,
            title=f"{file.title} — {what}",
            content=file.content,
            now=now,
        )
    listing = ", ".join(f"`{f.filename}` ({plural(f.rows, 'row')})" for f in files)
    text = f":package: {len(files)} CSV files for {what} are on their way to your DM with Liaison: {listing}."
    return Reply(
        text=text,
        blocks=[
            section(text),
            context(
                "UTF-8 CSV with times in ISO 8601; opens in Excel and LibreOffice. Only you receive them."
            ),
        ],
    )
