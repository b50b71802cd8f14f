"""`liaison doctor`: check that the running totals agree with the ledgers (and rebuild them if not)."""

from __future__ import annotations

from sqlalchemy import func, inspect, select, text

from storage import totals
from storage.db import Database
from storage.models import DeploymentTotal, Movement, Pledge

SHOWN = 20  # mismatches listed before "… and N more"


def run_doctor(database_url: str, *, repair: bool) -> int:
    """0 when the totals agree with the ledgers (or were rebuilt), 1 when they differ, 2 when unusable."""
    db = Database.from_url(database_url)
    try:
        if not inspect(db.engine).has_table(DeploymentTotal.__tablename__):
            print("liaison doctor: the schema is not up to date; run `liaison migrate` first.")
            return 2
        with db.session() as session:
            if session.get_bind().dialect.name == "postgresql":
                # Writers upsert the totals in their own transactions: wait for them, hold off new ones.
                session.execute(text("LOCK TABLE deployment_total IN EXCLUSIVE MODE"))
            movements = int(session.execute(select(func.count()).select_from(Movement)).scalar_one())
            pledges = int(session.execute(select(func.count()).select_from(Pledge)).scalar_one())
            found = totals.mismatches(session)
            if found and repair:
                written = totals.rebuild(session)
        ledgers = f"{movements:,} movements and {pledges:,} pledges"
        if not found:
            print(f"Running totals agree with the ledgers ({ledgers}).")
            return 0
        print(f"Running totals differ from the ledgers ({ledgers}) in {len(found)} places:")
        for mismatch in found[:SHOWN]:
            print(f"  {mismatch.describe()}")
        if len(found) > SHOWN:
            print(f"  … and {len(found) - SHOWN} more")
        if repair:
            print(f"Rebuilt the totals from the ledgers ({written} rows).")
            return 0
        print("Run `liaison doctor --repair` to rebuild them from the ledgers (the ledgers are the truth).")
        return 1
    finally:
        db.dispose()
