"""The rankings download: a hive-partitioned Parquet dataset (a file per month) that one
glob reads whole, and which months a build encodes again."""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import duckdb
import pyarrow.dataset
import pytest

from dagster_project.publish.site.downloads import DATASET, MONTH_PARQUET, STATE_FILE, write_parquet

MONTHS = [dt.date(2024, m, 1) for m in (1, 2, 3)]
TABLE = "marts.fct_monthly_rankings"


def rankings(con: duckdb.DuckDBPyConnection) -> None:
    """A small marts.fct_monthly_rankings: 3 months × 2 categories × 2 500 ranks."""
    con.execute("create schema if not exists marts")
    con.execute(f"""create or replace table {TABLE} as
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


def glob(folder: Path) -> str:
    return f"read_parquet('{folder / DATASET}/*/*.parquet', hive_partitioning = true)"


def same_rows(con: duckdb.DuckDBPyConnection, folder: Path) -> bool:
    file = f"(select * exclude (mois) from {glob(folder)})"
    return all(con.execute(f"select count(*) from (from {a} except all from {b})").fetchone()[0] == 0
               for a, b in ((TABLE, file), (file, TABLE)))


def month_file(folder: Path, month: dt.date) -> Path:
    return folder / DATASET / f"mois={month:%Y-%m}" / MONTH_PARQUET


def mtimes(folder: Path) -> dict[dt.date, int]:
    return {mo: month_file(folder, mo).stat().st_mtime_ns for mo in MONTHS}


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("create schema meta")
    rankings(con)
    log(con, MONTHS[0], MONTHS[-1])
    yield con
    con.close()


def test_one_glob_reads_every_row_with_duckdb_and_pyarrow(con, tmp_path):
    folder = tmp_path / "donnees"
    rows, size = write_parquet(con, folder, MONTHS, MONTHS)
    assert rows == 15000 and same_rows(con, folder)
    assert size == sum(month_file(folder, mo).stat().st_size for mo in MONTHS)
    assert con.execute(f"select distinct mois from {glob(folder)} order by 1").fetchall() == [
        ("2024-01",), ("2024-02",), ("2024-03",)]
    # pyarrow (pandas reads through it) skips the hidden state file
    table = pyarrow.dataset.dataset(folder / DATASET, partitioning="hive").to_table()
    assert table.num_rows == 15000 and "mois" in table.column_names
    assert json.loads((folder / DATASET / STATE_FILE).read_text())["changes"].startswith("1 ")


def test_a_build_encodes_its_months_and_the_changed_ones_only(con, tmp_path):
    folder = tmp_path / "donnees"
    write_parquet(con, folder, MONTHS, MONTHS)
    first = mtimes(folder)

    # a build for March: only March is encoded again
    write_parquet(con, folder, [MONTHS[2]], MONTHS)
    after = mtimes(folder)
    assert after[MONTHS[0]] == first[MONTHS[0]] and after[MONTHS[1]] == first[MONTHS[1]]
    assert after[MONTHS[2]] > first[MONTHS[2]]

    # January rewritten in the warehouse (logged), then a build for March: January follows
    con.execute(f"update {TABLE} set score = score + 1 where month = ?", [MONTHS[0]])
    log(con, MONTHS[0], MONTHS[0])
    write_parquet(con, folder, [MONTHS[2]], MONTHS)
    now = mtimes(folder)
    assert now[MONTHS[0]] > after[MONTHS[0]] and now[MONTHS[1]] == after[MONTHS[1]]
    assert same_rows(con, folder)
    assert json.loads((folder / DATASET / STATE_FILE).read_text())["changes"].startswith("2 ")

    # a month no longer ranked leaves the dataset
    con.execute(f"delete from {TABLE} where month = ?", [MONTHS[0]])
    log(con, MONTHS[0], MONTHS[0])
    assert write_parquet(con, folder, [MONTHS[2]], MONTHS[1:])[0] == 10000
    assert not month_file(folder, MONTHS[0]).parent.exists() and same_rows(con, folder)


def test_a_new_change_log_a_lost_file_or_new_columns_encode_again(con, tmp_path):
    folder = tmp_path / "donnees"
    write_parquet(con, folder, MONTHS, MONTHS)
    # the warehouse rebuilt from nothing: its log starts again at 1, with other data
    con.execute("drop table meta.changes")
    con.execute(f"update {TABLE} set score = -score")
    log(con, MONTHS[0], MONTHS[-1])
    write_parquet(con, folder, [MONTHS[2]], MONTHS)
    assert same_rows(con, folder)
    # a month's file deleted, another one's rows cut by hand
    month_file(folder, MONTHS[0]).unlink()
    cut = month_file(folder, MONTHS[1])
    con.execute(f"copy (select * from '{cut}' limit 10) to '{cut}.x' (format parquet)")
    os.replace(f"{cut}.x", cut)
    rows, _ = write_parquet(con, folder, [MONTHS[2]], MONTHS)
    assert rows == 15000 and same_rows(con, folder)
    # a column added to the model without a rebuild: the old months' files lack it
    con.execute(f"alter table {TABLE} add column note varchar default 'x'")
    write_parquet(con, folder, [MONTHS[2]], MONTHS)
    assert same_rows(con, folder)
    month_file(folder, MONTHS[0]).write_bytes(b"damaged")
    assert write_parquet(con, folder, [MONTHS[2]], MONTHS)[0] == 15000 and same_rows(con, folder)


def test_a_site_from_before_the_dataset_loses_its_older_copies(con, tmp_path):
    folder = tmp_path / "donnees"
    for old in (folder / "rankings.parquet", folder / "2024-01" / MONTH_PARQUET):
        old.parent.mkdir(parents=True, exist_ok=True)
        old.write_bytes(b"PAR1")
    write_parquet(con, folder, MONTHS, MONTHS)
    assert not (folder / "rankings.parquet").exists()
    assert not (folder / "2024-01" / MONTH_PARQUET).exists() and same_rows(con, folder)
