"""The DuckDB warehouse: short-lived connections and the analysts' published copy.

Connections are opened inside a step and closed before anything else (dbt) opens the file:
DuckDB allows one read-write process per file.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
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


def publish(warehouse: Path, published: Path) -> Path:
    """Copy the warehouse to `published` atomically: readers see the old or the new file.

    A reader holding the old file open keeps reading its (unlinked) inode on POSIX.
    """
    warehouse, published = Path(warehouse), Path(published)
    with connect(warehouse) as con:  # fold the WAL into the file before copying it
        con.execute("checkpoint")
    published.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".warehouse-", suffix=".tmp", dir=published.parent)
    os.close(fd)
    try:
        shutil.copyfile(warehouse, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, published)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return published
