"""Load the accounts registry (CSV) into `raw.accounts`; its bad rows into `raw.rejected_accounts`."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa

from dagster_project.load.schema import ensure_schema
from dagster_project.registry.accounts import RejectedRow, read_registry
from dagster_project.warehouse import connect, transaction


def load_registry(warehouse: Path, accounts_file: Path, known_territories: frozenset[str],
                  now: dt.datetime | None = None) -> tuple[int, list[RejectedRow]]:
    """Replace raw.accounts with the valid rows of the registry; record the rejected ones."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None)
    accounts, rejected = read_registry(Path(accounts_file), known_territories)
    name = Path(accounts_file).name
    with connect(warehouse) as con:
        ensure_schema(con)
        with transaction(con):
            con.execute("delete from raw.accounts")
            con.execute("delete from raw.rejected_accounts")
            if accounts:  # bulk insert through Arrow: registries can hold 36 000 rows
                table = pa.table({
                    "handle": [a.handle for a in accounts],
                    "territory_id": [a.territory_id for a in accounts],
                    "source_url": [a.source_url for a in accounts],
                    "checked_on": [a.checked_on for a in accounts],
                    "registry_file": [name] * len(accounts),
                    "registry_line": pa.array([a.line for a in accounts], pa.int32()),
                    "loaded_at": [now] * len(accounts),
                    "ig_user_id": [a.ig_user_id or None for a in accounts],
                })
                con.register("_accounts", table)
                con.execute("insert into raw.accounts by name select * from _accounts")
                con.unregister("_accounts")
            if rejected:
                con.executemany("insert into raw.rejected_accounts values (?, ?, ?, ?, ?)", [
                    (name, r.line, r.raw, r.reason, now) for r in rejected])
    return len(accounts), rejected
