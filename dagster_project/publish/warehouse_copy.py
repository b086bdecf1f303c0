"""The analysts' copy: published/warehouse.duckdb, a read-only copy of the warehouse brought up to
date with the months that changed, swapped in atomically."""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from dagster_project import months as m
from dagster_project.files import atomic_path
from dagster_project.warehouse import CHANGES_DDL, MEMORY_LIMIT, connect, sql_string

# The analysts' copy lives in two slots, published/.slots/{a,b}/warehouse.duckdb, and
# published/warehouse.duckdb is a symbolic link to the one in force. A publication brings
# the other slot up to date, then swaps the link (an atomic rename): readers open the old or
# the new copy, never a half-written one, and a reader holding a copy open keeps it (DuckDB's
# own file lock refuses to update a copy a reader holds: that slot is then copied afresh).
SLOTS = ("a", "b")
# Range-bounded tables rebuilt whole by each run: copied whole, not by month.
WHOLE_SCHEMAS = ("intermediate",)


@dataclass(frozen=True)
class Publication:
    path: Path       # the published link
    slot: Path       # the copy it now points to
    mode: str        # "incremental" or "full copy"
    months: int      # months copied into month-keyed tables (incremental)
    seconds: float


class _NeedsFullCopy(Exception):
    pass


def publish(warehouse: Path, published: Path) -> Publication:
    """Publish the warehouse at `published` for what changed since the target slot's last
    publication: the months logged in meta.changes, and the small tables without a month.
    A full copy only the first time (both slots), or when a reader holds the target slot."""
    t0 = time.perf_counter()
    warehouse, published = Path(warehouse), Path(published)
    with connect(warehouse) as con:  # fold the WAL into the file: it is read from elsewhere
        con.execute("checkpoint")
    current = Path(os.readlink(published)).parts[-2] if published.is_symlink() else None
    name = SLOTS[1] if current == SLOTS[0] else SLOTS[0]
    slot = _slot(published, name)
    try:
        months, mode = _update_slot(slot, warehouse), "incremental"
    except _NeedsFullCopy:
        _full_copy(warehouse, slot)
        months, mode = 0, "full copy"
        other = _slot(published, SLOTS[1] if name == SLOTS[0] else SLOTS[0])
        if not other.exists():  # first publication: the next one will be incremental
            _atomic_copy(slot, other)
    _swap_link(published, slot.relative_to(published.parent))
    return Publication(published, slot, mode, months, round(time.perf_counter() - t0, 2))


def _slot(published: Path, name: str) -> Path:
    return published.parent / ".slots" / name / published.name


def _update_slot(slot: Path, warehouse: Path) -> int:
    """Apply to `slot` the months logged since its last publication, in one transaction."""
    if not slot.exists():
        raise _NeedsFullCopy("no copy yet")
    try:
        con = duckdb.connect(str(slot), config={"memory_limit": MEMORY_LIMIT})
    except duckdb.Error as exc:  # a reader holds this copy, or it is unreadable
        raise _NeedsFullCopy(str(exc)) from exc
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"attach '{sql_string(warehouse)}' as src (read_only)")
        if not (_tables(con, "src").get(("meta", "changes")) and _tables(con).get(("meta", "publication"))):
            raise _NeedsFullCopy("no change log")
        done = con.execute("select seq from meta.publication").fetchone()[0]
        ranges = con.execute("select month_from, month_to from src.meta.changes where seq > ?",
                             [done]).fetchall()
        months = sorted({mo for a, b in ranges for mo in m.month_range(a, b)})
        con.execute("begin transaction")
        _copy_tables(con, months)
        con.execute("create or replace table meta.publication as "
                    "select coalesce(max(seq), 0) as seq from src.meta.changes")
        con.execute("commit")
        con.execute("detach src")
        con.execute("checkpoint")
        return len(months)
    finally:
        con.close()


def _copy_tables(con: duckdb.DuckDBPyConnection, months: list[dt.date]) -> None:
    """Month-keyed tables: the changed months; other tables whole; views recreated (dropped
    first: a model may have changed from a view to a table)."""
    for schema, view in con.execute("""select schema_name, view_name from duckdb_views()
            where database_name = current_database() and not internal""").fetchall():
        con.execute(f'drop view "{schema}"."{view}"')
    copied, target = _tables(con, "src"), _tables(con)
    for (schema, table), columns in copied.items():
        q = f'"{schema}"."{table}"'
        if ("month", "DATE") in columns and schema not in WHOLE_SCHEMAS and target.get((schema, table)) == columns:
            con.execute(f"delete from {q} where month = any(?)", [months])
            con.execute(f"insert into {q} select * from src.{q} where month = any(?)", [months])
        else:
            con.execute(f'create schema if not exists "{schema}"')
            con.execute(f"create or replace table {q} as select * from src.{q}")
    for schema, table in set(target) - set(copied) - {("meta", "publication")}:
        con.execute(f'drop table "{schema}"."{table}"')
    for schema, sql in con.execute("""select schema_name, sql from duckdb_views()
            where database_name = 'src' and not internal""").fetchall():
        con.execute(f'create schema if not exists "{schema}"')
        con.execute(sql)


def _tables(con: duckdb.DuckDBPyConnection, database: str | None = None) -> dict:
    """{(schema, table): [(column, type), …] in order} of the base tables of a database."""
    rows = con.execute("""
        select c.schema_name, c.table_name, list((c.column_name, c.data_type) order by c.column_index)
        from duckdb_columns() c join duckdb_tables() t
            on t.database_name = c.database_name and t.schema_name = c.schema_name
            and t.table_name = c.table_name
        where c.database_name = coalesce(?, current_database()) and not t.internal
        group by all""", [database]).fetchall()
    return {(s, t): [tuple(col) for col in cols] for s, t, cols in rows}


def _full_copy(warehouse: Path, slot: Path) -> None:
    """Copy the whole warehouse into `slot`, marked as up to date with its change log."""
    def mark(tmp: Path) -> None:
        with connect(tmp) as con:
            con.execute(CHANGES_DDL)
            con.execute("create or replace table meta.publication as "
                        "select coalesce(max(seq), 0) as seq from meta.changes")
            con.execute("checkpoint")
    _atomic_copy(warehouse, slot, mark)


def _atomic_copy(src: Path, dest: Path, prepare=None) -> None:
    """Copy `src` to `dest` through a temporary file, fsync'ed, then renamed over `dest`."""
    with atomic_path(dest, durable=True) as tmp:
        shutil.copyfile(src, tmp)
        if prepare is not None:
            prepare(tmp)


def _swap_link(link: Path, target: Path) -> None:
    """Point `link` at `target` (relative) with one rename: readers see the old or new."""
    tmp = link.parent / f".{link.name}.{os.getpid()}.link"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, link)
