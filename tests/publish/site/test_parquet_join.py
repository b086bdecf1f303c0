"""rankings.parquet joined from one file per month: the join itself (bytes copied, footer
offsets moved) and which months a build encodes again."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from dagster_project.publish.site import parquet_join
from dagster_project.publish.site.build import CHANGES_KEY, MONTH_PARQUET, write_parquet

MONTHS = [dt.date(2024, m, 1) for m in (1, 2, 3)]


def rankings(con: duckdb.DuckDBPyConnection) -> None:
    """A small marts.fct_monthly_rankings: 3 months × 2 categories × 2 500 ranks, text and
    numbers (the territory ids repeat, so their columns are dictionary-encoded and get a
    bloom filter, whose offsets the join must move too)."""
    con.execute("create schema if not exists marts")
    con.execute("""create or replace table marts.fct_monthly_rankings as
        select month, category, rank, 'commune:' || (rank % 97) as territory_id,
               rank * 1.5 + month(month) as score, rank % 3 = 0 as is_new_entry
        from unnest(?::date[]) m(month), (values ('region'), ('petite_ville')) c(category),
             range(1, 2501) r(rank)""", [MONTHS])


def log(con: duckdb.DuckDBPyConnection, first: dt.date, last: dt.date) -> None:
    con.execute("""create table if not exists meta.changes (seq bigint, month_from date,
                   month_to date, step varchar, recorded_at timestamp)""")
    con.execute("""insert into meta.changes select coalesce(max(seq), 0) + 1, ?, ?, 'transform',
                   now() + to_microseconds(coalesce(max(seq), 0)) from meta.changes""",
                [first, last])


def same_rows(con: duckdb.DuckDBPyConnection, parquet: Path) -> bool:
    table, file = "marts.fct_monthly_rankings", f"'{parquet}'"
    return all(con.execute(f"select count(*) from (from {a} except all from {b})").fetchone()[0] == 0
               for a, b in ((table, file), (file, table)))


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("create schema meta")
    rankings(con)
    log(con, MONTHS[0], MONTHS[-1])
    yield con
    con.close()


def parts(con, folder: Path, row_group_size: int = 2048) -> list[Path]:
    out = []
    for mo in MONTHS:
        p = folder / f"{mo:%Y-%m}.parquet"
        con.execute(f"""copy (select * from marts.fct_monthly_rankings where month = ?
                              order by category, rank)
                        to '{p}' (format parquet, compression zstd, row_group_size {row_group_size})""",
                    [mo])
        out.append(p)
    return out


def test_footer_decodes_and_encodes_to_the_same_bytes(con, tmp_path):
    for part in parts(con, tmp_path):
        data = part.read_bytes()
        with open(part, "rb") as fh:
            meta, start = parquet_join.read_footer(fh)
        assert parquet_join.encode(meta) == data[start:-8]


def test_joined_file_holds_every_row_for_duckdb_and_pyarrow(con, tmp_path):
    joined = tmp_path / "all.parquet"
    n = parquet_join.join(parts(con, tmp_path), joined, {"k": "v 1"})
    assert n == 15000 == pq.read_table(joined).num_rows
    assert same_rows(con, joined)
    meta = pq.read_metadata(joined)
    assert meta.num_row_groups >= 6              # 5 000 rows a month, in groups of 2 048 or so
    assert any(meta.row_group(g).column(3).to_dict().get("bloom_filter_offset")
               for g in range(meta.num_row_groups))
    assert meta.metadata == {b"k": b"v 1"} and parquet_join.key_values(joined) == {"k": "v 1"}
    # point lookups go through each row group's statistics and bloom filter at their new offsets
    assert con.execute(f"select count(*) from '{joined}' where territory_id = 'commune:5'"
                       ).fetchone()[0] == con.execute("""select count(*) from marts.fct_monthly_rankings
                                                         where territory_id = 'commune:5'""").fetchone()[0]
    assert con.execute(f"select sum(score) from '{joined}' where month = '2024-03-01'").fetchone() == \
        con.execute("select sum(score) from marts.fct_monthly_rankings where month = '2024-03-01'").fetchone()


def test_join_refuses_parts_of_other_columns_or_not_parquet(con, tmp_path):
    ps = parts(con, tmp_path)
    other = tmp_path / "other.parquet"
    con.execute(f"copy (select month, rank from marts.fct_monthly_rankings) to '{other}' (format parquet)")
    with pytest.raises(ValueError, match="columns differ"):
        parquet_join.join([ps[0], other], tmp_path / "x.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ValueError, match="not a Parquet file"):
        parquet_join.join([tmp_path / "bad.parquet"], tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temporary left


def mtimes(folder: Path) -> dict[dt.date, int]:
    return {mo: (folder / f"{mo:%Y-%m}" / MONTH_PARQUET).stat().st_mtime_ns for mo in MONTHS}


def test_a_build_encodes_its_months_and_the_changed_ones_only(con, tmp_path):
    folder = tmp_path / "donnees"
    rows, size = write_parquet(con, folder, MONTHS, MONTHS)
    parquet = folder / "rankings.parquet"
    assert rows == 15000 and size == parquet.stat().st_size and same_rows(con, parquet)
    assert parquet_join.key_values(parquet)[CHANGES_KEY].startswith("1 ")
    first = mtimes(folder)

    # a build for March: only March is encoded again
    os.utime(parquet)
    write_parquet(con, folder, [MONTHS[2]], MONTHS)
    after = mtimes(folder)
    assert after[MONTHS[0]] == first[MONTHS[0]] and after[MONTHS[1]] == first[MONTHS[1]]
    assert after[MONTHS[2]] > first[MONTHS[2]]

    # January rewritten in the warehouse (logged), then a build for March: January follows
    con.execute("update marts.fct_monthly_rankings set score = score + 1 where month = ?", [MONTHS[0]])
    log(con, MONTHS[0], MONTHS[0])
    write_parquet(con, folder, [MONTHS[2]], MONTHS)
    now = mtimes(folder)
    assert now[MONTHS[0]] > after[MONTHS[0]] and now[MONTHS[1]] == after[MONTHS[1]]
    assert same_rows(con, parquet)
    assert parquet_join.key_values(parquet)[CHANGES_KEY].startswith("2 ")


def test_a_new_change_log_or_a_lost_part_encodes_again(con, tmp_path):
    folder = tmp_path / "donnees"
    write_parquet(con, folder, MONTHS, MONTHS)
    parquet = folder / "rankings.parquet"
    # the warehouse rebuilt from nothing: its log starts again at 1, with other data
    con.execute("drop table meta.changes")
    con.execute("update marts.fct_monthly_rankings set score = -score")
    log(con, MONTHS[0], MONTHS[-1])
    write_parquet(con, folder, [MONTHS[2]], MONTHS)
    assert same_rows(con, parquet)
    # a month's file deleted, another one's rows cut by hand
    (folder / f"{MONTHS[0]:%Y-%m}" / MONTH_PARQUET).unlink()
    cut = folder / f"{MONTHS[1]:%Y-%m}" / MONTH_PARQUET
    con.execute(f"copy (select * from '{cut}' limit 10) to '{cut}.x' (format parquet)")
    os.replace(f"{cut}.x", cut)
    rows, _ = write_parquet(con, folder, [MONTHS[2]], MONTHS)
    assert rows == 15000 and same_rows(con, parquet)
    # a column added to the model without a rebuild: the old months' files lack it
    con.execute("alter table marts.fct_monthly_rankings add column note varchar default 'x'")
    rows, _ = write_parquet(con, folder, [MONTHS[2]], MONTHS)
    assert rows == 15000 and same_rows(con, parquet)
    (folder / f"{MONTHS[0]:%Y-%m}" / MONTH_PARQUET).write_bytes(b"damaged")
    assert write_parquet(con, folder, [MONTHS[2]], MONTHS)[0] == 15000 and same_rows(con, parquet)
