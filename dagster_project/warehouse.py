"""The DuckDB warehouse: short-lived connections, transactions, the writers' lock, the change log.

Connections are opened inside a step and closed before anything else (dbt) opens the file:
DuckDB allows one read-write process per file.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb

MEMORY_LIMIT = os.environ.get("OBSERVATOIRE_DUCKDB_MEMORY", "1GB")


@contextlib.contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection closed on exit (never keep one across steps). Read-only: the file must
    exist (FileNotFoundError otherwise), and it opens with DuckDB's default configuration,
    so it can share the file with any other reader of the same process."""
    path = Path(path)
    if read_only:
        if not path.is_file():
            raise FileNotFoundError(f"warehouse not found: {path}")
        con = duckdb.connect(str(path), read_only=True)
        # the same memory bound as writers, set at run time (a config would stop readers of
        # the same process from sharing the file)
        con.execute(f"set memory_limit = '{MEMORY_LIMIT}'")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A bounded buffer pool keeps the pipeline under its memory budget (DuckDB spills
        # to disk beyond it); the default would be 80 % of the machine's RAM.
        con = duckdb.connect(str(path), config={"memory_limit": MEMORY_LIMIT})
    try:
        con.execute("set TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


@contextlib.contextmanager
def transaction(con, begin: str = "begin transaction") -> Iterator[None]:
    """The block as one transaction: committed if it ends, rolled back if it raises
    (a DuckDB connection, or sqlite3's with `begin="BEGIN IMMEDIATE"`)."""
    con.execute(begin)
    try:
        yield
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


@contextlib.contextmanager
def writer_lock(data_dir: Path) -> Iterator[None]:
    """Serialise the processes that write the warehouse (load, dbt, publish).

    Dagster's pool `warehouse` already queues writer steps of runs it launches; this lock
    also covers runs it cannot see queue (two `observatoire run` at once): the second
    waits instead of failing on DuckDB's file lock. Released by the OS if the process dies.
    """
    path = Path(data_dir) / ".warehouse.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


CHANGES_DDL = """
create schema if not exists meta;
create table if not exists meta.changes (
    seq bigint not null,        -- 1, 2, 3 … in the order of the writes
    month_from date not null,   -- the months a step was about to rewrite
    month_to date not null,
    step varchar not null,      -- load | transform
    recorded_at timestamp not null
);
"""


def record_change(con: duckdb.DuckDBPyConnection, first: dt.date, last: dt.date, step: str) -> None:
    """Note in meta.changes that `step` is about to rewrite the months first..last.

    Recorded before the write, so the months of a step that fails half-way are published
    again too; publishing reads this log to copy only the months that changed.
    """
    con.execute(CHANGES_DDL)
    con.execute("""insert into meta.changes
        select coalesce(max(seq), 0) + 1, ?, ?, ?, now() at time zone 'UTC' from meta.changes""",
                [first, last, step])


def sql_string(path: Path | str) -> str:
    """A path as the text of a SQL string literal (quotes doubled)."""
    return str(path).replace("'", "''")


