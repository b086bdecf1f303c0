"""The site's downloads, `donnees/`: each month's CSV exports (copied from `exports/`) and
the rankings of every month as a hive-partitioned Parquet dataset,
`donnees/classements/mois=<YYYY-MM>/classements.parquet`, that one glob reads whole."""
from __future__ import annotations

import datetime as dt
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb

from dagster_project.files import atomic_path, write_text_atomically
from dagster_project.months import month_key
from dagster_project.publish.exports.areas import KINDS
from dagster_project.warehouse import sql_string

DATASET = "classements"                 # donnees/classements/: the rankings, hive-partitioned
MONTH_PARQUET = "classements.parquet"   # a month's file: classements/mois=<YYYY-MM>/
STATE_FILE = ".etat.json"  # in the dataset: the last meta.changes row it holds, the columns
AREA_FOLDERS = tuple(folder for folder, *_ in KINDS.values())   # departements, regions


def write_downloads(con: duckdb.DuckDBPyConnection, exports_dir: Path, out: Path,
                    months: list[dt.date], all_months: list[dt.date]) -> tuple[int, int]:
    """Copy the CSV exports of `months`; bring the rankings dataset up to date with every
    month in `all_months`. Returns its (rows, bytes)."""
    folder = out / "donnees"
    folder.mkdir(parents=True, exist_ok=True)
    for month in months:
        src = Path(exports_dir) / month_key(month)
        if not src.is_dir():
            continue
        # the month's files, and its départements/ and régions/ files (one folder each)
        for sub in ("", *AREA_FOLDERS):
            if sub and not (src / sub).is_dir():
                continue
            _copy_csv_folder(src / sub, folder / month_key(month) / sub,
                             keep=set(AREA_FOLDERS) if not sub else set())
    return write_parquet(con, folder, months, all_months)


def write_parquet(con: duckdb.DuckDBPyConnection, folder: Path, months: list[dt.date],
                  all_months: list[dt.date]) -> tuple[int, int]:
    """The rankings of every month as a hive-partitioned Parquet dataset,
    `classements/mois=<YYYY-MM>/classements.parquet` (one glob reads it whole: DuckDB,
    pandas, pyarrow). Only the months of this build, the months changed in the warehouse
    since the last build (meta.changes, as recorded in the dataset's `.etat.json`) and the
    missing ones are encoded again: a month costs the same in year ten. Returns the
    dataset's (rows, bytes)."""
    dataset = folder / DATASET
    state_path = dataset / STATE_FILE
    mark = _last_change(con)
    columns = [list(c) for c in con.execute(
        """select column_name, data_type from information_schema.columns
           where table_schema = 'marts' and table_name = 'fct_monthly_rankings'
           order by ordinal_position""").fetchall()]
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = {}
    done = state.get("changes") if state.get("columns") == columns else None
    stale = set(all_months)
    if mark and done and con.execute(   # the log the dataset was written with, not a new one
            "select count(*) from meta.changes where seq || ' ' || recorded_at = ?",
            [done]).fetchone()[0]:
        stale = set(months) | {mo for a, b in con.execute(
            "select month_from, month_to from meta.changes where seq > ?",
            [int(done.split()[0])]).fetchall() for mo in all_months if a <= mo <= b}
    if not state:   # first build of a dataset, or of a site from before it: no older copies
        (folder / "rankings.parquet").unlink(missing_ok=True)
        for old in folder.glob(f"*/{MONTH_PARQUET}"):
            old.unlink()
    files = {mo: _month_file(dataset, mo) for mo in all_months}
    stale |= {mo for mo, path in files.items() if not path.exists()}
    _encode_months(con, dataset, sorted(stale))
    for part in dataset.glob("mois=*"):        # months no longer ranked
        if part.is_dir() and part / MONTH_PARQUET not in files.values():
            shutil.rmtree(part, ignore_errors=True)
    rows = con.execute("select count(*) from marts.fct_monthly_rankings").fetchone()[0]
    if _rows_in(con, list(files.values())) != rows:   # a file damaged, cut or foreign
        _encode_months(con, dataset, all_months)
    write_text_atomically(state_path, json.dumps({"changes": mark, "columns": columns}))
    return rows, sum(path.stat().st_size for path in files.values())


def _month_file(dataset: Path, month: dt.date) -> Path:
    return dataset / f"mois={month_key(month)}" / MONTH_PARQUET


def _rows_in(con: duckdb.DuckDBPyConnection, files: list[Path]) -> int | None:
    """Rows of `files` read from their footers (None: one is missing or not Parquet)."""
    if not files:
        return 0
    try:
        with con.cursor() as cur:
            return cur.execute("select sum(num_rows) from parquet_file_metadata(?)",
                               [[str(f) for f in files]]).fetchone()[0]
    except duckdb.Error:
        return None


def _last_change(con: duckdb.DuckDBPyConnection) -> str | None:
    """The latest write logged in the warehouse's meta.changes, as 'seq recorded_at'
    (None: no log)."""
    if not con.execute("""select count(*) from duckdb_tables()
                          where schema_name = 'meta' and table_name = 'changes'""").fetchone()[0]:
        return None
    row = con.execute("""select seq || ' ' || recorded_at from meta.changes
                         order by seq desc limit 1""").fetchone()
    return row[0] if row else None


def _encode_months(con: duckdb.DuckDBPyConnection, dataset: Path, months: list[dt.date]) -> None:
    """One Parquet file per month, two months at a time (a cursor each)."""
    def encode(month: dt.date) -> None:
        part = _month_file(dataset, month)
        with atomic_path(part) as tmp, con.cursor() as cur:
            cur.execute(f"""copy (select * from marts.fct_monthly_rankings where month = ?
                                  order by category, rank)
                            to '{sql_string(tmp)}' (format parquet, compression zstd)""", [month])
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(encode, months))


def _copy_csv_folder(src: Path, dst: Path, keep: set[str]) -> None:
    """Copy the .csv and .txt files of `src` into `dst` (each replaced whole) and remove the
    files `dst` has that `src` no longer has, but those named in `keep`."""
    dst.mkdir(parents=True, exist_ok=True)
    wanted = [f for f in sorted(src.iterdir()) if f.suffix in (".csv", ".txt")]
    for f in wanted:
        with atomic_path(dst / f.name) as tmp:
            shutil.copyfile(f, tmp)
    for old in set(dst.iterdir()) - {dst / f.name for f in wanted}:
        if not old.name.startswith(".") and old.name not in keep and old.is_file():
            old.unlink(missing_ok=True)


def download_files(out: Path) -> list[tuple[str, list[tuple[str, str]]]]:
    """Per month, newest first: (YYYY-MM, [(file name, link from the site's root)]): its
    exports' files, then its file of the rankings dataset."""
    folder = out / "donnees"
    listing = []
    for d in sorted(folder.iterdir(), reverse=True):
        if not d.is_dir() or d.name.startswith(".") or d.name == DATASET:
            continue
        files = [(f.name, f"donnees/{d.name}/{f.name}") for f in sorted(d.iterdir())
                 if f.is_file() and not f.name.startswith(".")]
        parquet = folder / DATASET / f"mois={d.name}" / MONTH_PARQUET
        if parquet.is_file():
            files.append((MONTH_PARQUET, parquet.relative_to(out).as_posix()))
        listing.append((d.name, files))
    return listing


def size_text(n: int) -> str:
    return f"{n / 1e6:.1f} Mo".replace(".", ",") if n >= 1e5 else f"{n / 1e3:.0f} ko"
