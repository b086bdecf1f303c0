"""Publishing the analysts' copy costs what changed: two slots, a change log, one link swap.

Every check compares the published copy with the warehouse table by table (rows as
multisets), so an incremental publication that missed a month or a table fails here.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb
import pytest
from rel_helpers import JULY, JUNE, dumps, snapshot, write

from dagster_project.publish.warehouse_copy import publish
from dagster_project.warehouse import connect

pytestmark = pytest.mark.timeout(120)


def table_differences(warehouse, published) -> dict[str, int]:
    """{table: rows in one but not the other (both directions)} for every table of both."""
    con = duckdb.connect()
    try:
        con.execute(f"attach '{warehouse}' as w (read_only)")
        con.execute(f"attach '{published}' as p (read_only)")

        def tables(db):
            return {(s, t) for s, t in con.execute(
                "select schema_name, table_name from duckdb_tables() where database_name = ?",
                [db]).fetchall()}

        out = {}
        for s, t in sorted(tables("w") | tables("p")):
            if (s, t) == ("meta", "publication"):
                continue
            if (s, t) not in tables("w") or (s, t) not in tables("p"):
                out[f"{s}.{t}"] = -1
                continue
            n = con.execute(f"""select count(*) from (
                (select * from w."{s}"."{t}" except all select * from p."{s}"."{t}")
                union all
                (select * from p."{s}"."{t}" except all select * from w."{s}"."{t}"))""").fetchone()[0]
            if n:
                out[f"{s}.{t}"] = n
        return out
    finally:
        con.close()


def test_incremental_publications_equal_the_warehouse(landing, tmp_path):
    published = tmp_path / "data" / "published" / "warehouse.duckdb"
    write(landing.root, "2021-06", "a.ndjson", [dumps(snapshot(f"juin_{i}", "2021-06-30T10:00:00Z", items=[]))
                                                for i in range(4)])
    landing.load([JUNE])
    first = publish(landing.db, published)
    assert first.mode == "full copy"
    assert published.is_symlink() and published.resolve() == first.slot
    assert table_differences(landing.db, published) == {}

    # a new month: only that month is copied, into the other slot
    write(landing.root, "2021-07", "a.ndjson", [dumps(snapshot(f"juillet_{i}")) for i in range(3)])
    landing.load([JULY])
    second = publish(landing.db, published)
    assert (second.mode, second.months) == ("incremental", 1)
    assert second.slot != first.slot and published.resolve() == second.slot
    assert table_differences(landing.db, published) == {}

    # June gets a new file: the first slot catches up on July (loaded since) and June
    write(landing.root, "2021-06", "b.ndjson", [dumps(snapshot("juin_0", "2021-06-30T11:00:00Z", items=[],
                                                               followers_count=99999))])
    landing.load([JUNE])
    third = publish(landing.db, published)
    assert (third.mode, third.months, third.slot) == ("incremental", 2, first.slot)
    assert table_differences(landing.db, published) == {}
    with connect(published, read_only=True) as con:
        assert con.execute("select count(*), max(followers_count) from raw.snapshots "
                           "where month = ?", [JUNE]).fetchone() == (5, 99999)

    # the second slot catches up on June only; then nothing is left to copy by month
    fourth = publish(landing.db, published)
    assert (fourth.mode, fourth.months, fourth.slot) == ("incremental", 1, second.slot)
    assert table_differences(landing.db, published) == {}
    fifth = publish(landing.db, published)
    assert (fifth.mode, fifth.months) == ("incremental", 0)
    assert table_differences(landing.db, published) == {}


def test_a_changed_table_shape_and_a_dropped_table_are_followed(landing, tmp_path):
    published = tmp_path / "data" / "published" / "warehouse.duckdb"
    write(landing.root, "2021-07", "a.ndjson", [dumps(snapshot("gersledepartement"))])
    landing.load([JULY])
    publish(landing.db, published)
    with connect(landing.db) as con:  # a migration adds a column, a table goes away
        con.execute("alter table raw.snapshots add column note varchar default 'x'")
        con.execute("create table raw.scratch (month date)")
    publish(landing.db, published)
    with connect(landing.db) as con:
        con.execute("drop table raw.scratch")
    pub = publish(landing.db, published)
    assert pub.mode == "incremental"
    assert table_differences(landing.db, published) == {}


READER = textwrap.dedent("""
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    print(con.execute("select count(*) from raw.snapshots").fetchone()[0], flush=True)
    sys.stdin.readline()
    print(con.execute("select count(*) from raw.snapshots").fetchone()[0], flush=True)
""")


def test_a_reader_holding_the_target_slot_gets_a_fresh_copy_not_a_change(landing, tmp_path):
    published = tmp_path / "data" / "published" / "warehouse.duckdb"
    write(landing.root, "2021-07", "a.ndjson", [dumps(snapshot("gersledepartement"))])
    landing.load([JULY])
    first = publish(landing.db, published)
    # an analyst opens the copy in force; two publications later that slot is the target
    reader = subprocess.Popen([sys.executable, "-c", READER, str(published)], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert reader.stdout.readline().strip() == "1"
        write(landing.root, "2021-07", "b.ndjson", [dumps(snapshot("nouveau"))])
        landing.load([JULY])
        assert publish(landing.db, published).mode == "incremental"   # the other slot
        write(landing.root, "2021-07", "c.ndjson", [dumps(snapshot("encore"))])
        landing.load([JULY])
        third = publish(landing.db, published)
        assert (third.mode, third.slot) == ("full copy", first.slot)  # DuckDB's lock said no
        assert table_differences(landing.db, published) == {}
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "1", "the reader kept its copy unchanged"
        reader.stdin.close()
        assert reader.wait(timeout=30) == 0, reader.stderr.read()
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    # the reader is gone: the next publication is incremental again
    assert publish(landing.db, published).mode == "incremental"
