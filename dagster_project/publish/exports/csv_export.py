"""Journalist CSV exports: one folder per month, replaced atomically.

`export_month(warehouse, month, exports_dir, dialect)` (or `export_months` for a range
through one connection) writes

    <exports_dir>/<YYYY-MM>/<category>.csv          the Top N of each of the 8 categories
    <exports_dir>/<YYYY-MM>/departements/<code>.csv  every ranked territory of a département
    <exports_dir>/<YYYY-MM>/regions/<code>.csv       … of a région
    <exports_dir>/<YYYY-MM>/alertes.csv             accounts that could not be ranked
    <exports_dir>/<YYYY-MM>/LISEZMOI.txt            methodology, sources, dates, demo notice

The CSV files are formatted by DuckDB (`csv_sql.py`: cells, quoting, records, whole files
in a few queries for any number of months); the rest is Python: the month's facts
(`month_data.py`), the LISEZMOI text (`lisezmoi.py`, a Jinja2 template), the words
(`texts.py`).

Formatting decisions (documented to journalists in LISEZMOI.txt):
- `compte` holds the bare handle, without `@` (`gersledepartement`): an `@` first would
  need the `'` guard on every row (`'@gersledepartement`, shown as is by spreadsheets);
  handles match `^[a-z0-9._]{1,30}$` so the bare handle never needs neutralising.
- every *text* cell starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'`. The
  `évolution` of an unchanged rank is the word `stable`, which needs no guard (a `'=` would
  show its apostrophe after a CSV import). Number cells are written
  as numbers (`-12` stays `-12`; growth has no `+`, spreadsheets would drop it anyway).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path

import duckdb

from dagster_project.files import (
    DIR_MODE,
    fsync_dir,
    replace_dir_atomically,
    write_bytes_atomically,
)
from dagster_project.months import month_key
from dagster_project.publish.exports.areas import KINDS
from dagster_project.publish.exports.csv_sql import (
    alert_files,
    area_files,
    month_parameters,
    months_in,
    ranking_files,
)
from dagster_project.publish.exports.lisezmoi import readme_text
from dagster_project.publish.exports.month_data import (
    MonthData,
    connect,
    months_with_data,
    read_month,
    read_months,
)
from dagster_project.publish.formatting import first_of_month

# ---------------------------------------------------------------- dialects

@dataclass(frozen=True)
class ExportDialect:
    name: str
    delimiter: str
    decimal: str
    bom: bool
    description: str

    @property
    def encoding(self) -> str:
        return "utf-8-sig" if self.bom else "utf-8"


DIALECTS: dict[str, ExportDialect] = {
    "excel-fr": ExportDialect(
        "excel-fr", ";", ",", True,
        "UTF-8 avec BOM, séparateur « ; », virgule décimale, fins de ligne CRLF "
        "(s'ouvre par double-clic dans Excel ou LibreOffice en français)"),
    "rfc4180": ExportDialect(
        "rfc4180", ",", ".", False,
        "RFC 4180 : UTF-8 sans BOM, séparateur « , », point décimal, fins de ligne CRLF"),
}


def get_dialect(name: str) -> ExportDialect:
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown CSV dialect {name!r}: valid dialects are "
                         f"{', '.join(DIALECTS)}") from None


# ---------------------------------------------------------------- headers

KPI_HEADERS = ["abonnés", "croissance abonnés", "taux d'engagement (%)", "publications/jour",
               "portée (%)", "score", "données"]
RANKING_HEADERS = ["rang", "évolution", "territoire", "code", "département", "région",
                   "compte", *KPI_HEADERS]
# departements/<code>.csv and regions/<code>.csv: every ranked territory of the area
AREA_HEADERS = ["catégorie", "rang national", "Top N national", "rang local",
                "évolution (rang local)", "territoire", "code", "département", "compte",
                *KPI_HEADERS]
ALERT_HEADERS = ["territoire", "code", "catégorie", "compte", "alerte", "détail",
                 "dernier mois classé", "dernier rang", "données"]



# ---------------------------------------------------------------- writing

# Ranked rows whose files one batch of queries returns, at most (months are grouped up to
# it): bounds the memory of the files' texts (a national month ranks ~36 000 accounts, ~15 MB
# of département and région files), while a backfill runs a few queries only.
ROWS_PER_BATCH = 300_000


def csv_bytes(dialect: ExportDialect, header: list[str], rows: list[list[str]]) -> bytes:
    """A whole file by Python's csv module (the header of every file; and what the SQL
    records are tested against)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=dialect.delimiter, quotechar='"',
                        quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(dialect.encoding)


def header_bytes(dialect: ExportDialect, header: list[str]) -> bytes:
    """A file's first line (with the BOM of excel-fr): the whole file when it has no row."""
    return csv_bytes(dialect, header, [])


def file_bytes(dialect: ExportDialect, header: list[str], body: str | None) -> bytes:
    """A file from its header and the records DuckDB assembled (`csv_sql.files_query`)."""
    head = header_bytes(dialect, header)
    return head if body is None else head + body.encode("utf-8") + b"\r\n"


def read_files(con: duckdb.DuckDBPyConnection, months: list[dt.date],
               spec: ExportDialect) -> dict[str, dict[str, bytes]]:
    """Every CSV file of `months` with at least one record, as bytes: month key → path in
    the month's folder → bytes (three queries, whatever the number of months)."""
    params = month_parameters(months)
    files: dict[str, dict[str, bytes]] = {month_key(mo): {} for mo in months}
    for query, header in ((ranking_files(spec.decimal, spec.delimiter), RANKING_HEADERS),
                          (area_files(spec.decimal, spec.delimiter), AREA_HEADERS),
                          (alert_files(spec.delimiter), ALERT_HEADERS)):
        for key, name, body in con.execute(query, params).fetchall():
            files[key][name] = file_bytes(spec, header, body)
    return files


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)


# ---------------------------------------------------------------- entry points

def export_months(con: duckdb.DuckDBPyConnection, months: list[dt.date], exports_dir: Path,
                  dialect: str = "excel-fr") -> list[Path]:
    """Write the CSV exports of `months` (each with rankings or alerts) through an open
    connection: the files of many months formatted by DuckDB in three queries, then each
    month's folder written and swapped in. Returns the paths written."""
    spec = get_dialect(dialect)
    months = sorted({first_of_month(mo) for mo in months})
    written: list[Path] = []
    for batch in month_batches(con, months):
        files = read_files(con, batch, spec)
        for data in read_months(con, batch).values():
            written += _write_month(data, Path(exports_dir), spec, files[month_key(data.month)])
    return written


def month_batches(con: duckdb.DuckDBPyConnection, months: list[dt.date]) -> list[list[dt.date]]:
    """`months` in runs holding at most ROWS_PER_BATCH ranked rows (a month at least)."""
    if not months:
        return []
    counts = dict(con.execute(f"select month, count(*) from marts.fct_monthly_rankings "
                              f"where {months_in('month')} group by month",
                              month_parameters(months)).fetchall())
    batches: list[list[dt.date]] = []
    rows = 0
    for month in months:
        n = counts.get(month, 0)
        if not batches or rows + n > ROWS_PER_BATCH:
            batches.append([])
            rows = 0
        batches[-1].append(month)
        rows += n
    return batches


def _write_month(data: MonthData, exports_dir: Path, spec: ExportDialect,
                 files: dict[str, bytes]) -> list[Path]:
    """Build the month's folder from its files and swap it in."""
    month = data.month
    if not data.rows and not data.alerts and not data.ranked_counts:
        raise ValueError(f"no rankings or alerts for {month_key(month)} in the warehouse: "
                         "run the pipeline for that month first")
    exported_at = dt.datetime.now(dt.UTC)
    final = exports_dir / month_key(month)
    names: list[str] = []

    def build(tmp: Path) -> None:
        described: list[tuple[str, str]] = []
        for cat in data.categories:
            name = f"{cat['category']}.csv"
            names.append(name)
            shown = len(data.rankings.get(cat["category"], []))
            top = f"Top {cat['top_n']}" if cat.get("top_n") else "Top N"
            described.append((name, (f"{cat['label']} — {top} ({shown} comptes sur "
                                     f"{data.ranked_counts.get(cat['category'], 0)} classés)")))
        names.append("alertes.csv")
        described.append(("alertes.csv", f"comptes non classés ce mois-ci ({len(data.alerts)})"))
        for kind, (folder, *_rest) in KINDS.items():
            (tmp / folder).mkdir(mode=DIR_MODE)
            area = sorted(n for n in files if n.startswith(folder + "/"))
            names.extend(area)
            described.append((f"{folder}/<code>.csv", AREA_FILES[kind].format(n=len(area))))
        empty = {"alertes.csv": ALERT_HEADERS}
        for name in names:
            header = empty.get(name, AREA_HEADERS if "/" in name else RANKING_HEADERS)
            _write_file(tmp / name, files.get(name) or header_bytes(spec, header))
        text = readme_text(data, spec, exported_at, described)
        with open(tmp / "LISEZMOI.txt", "w", encoding=spec.encoding, newline="") as fh:
            fh.write(text)
        names.append("LISEZMOI.txt")

    replace_dir_atomically(final, build)
    return [final / n for n in names]


def export_month(warehouse: Path | duckdb.DuckDBPyConnection, month: dt.date, exports_dir: Path,
                 dialect: str = "excel-fr") -> list[Path]:
    """Write the month's CSV exports; returns the paths written (categories, alertes,
    départements, régions, LISEZMOI). `warehouse` is a file, or an open connection.

    Re-exporting replaces the whole `<exports_dir>/<YYYY-MM>/` folder atomically; files
    written there by others (e.g. `rapport.html`) are replaced too, so render the report
    after exporting. Raises ValueError for an unknown dialect or a month without data.
    """
    get_dialect(dialect)
    if not isinstance(warehouse, duckdb.DuckDBPyConnection):
        with connect(warehouse) as con:
            try:
                return export_month(con, month, exports_dir, dialect)
            except ValueError as exc:
                raise ValueError(str(exc).replace("the warehouse", str(warehouse))) from None
    return export_months(warehouse, [month], exports_dir, dialect)


AREA_FILES = {
    "departement": ("un fichier par département ({n}, code INSEE : 32, 2A, 971…) : tous les "
                    "territoires classés du département ce mois-ci, toutes catégories, avec "
                    "leur rang national et leur rang dans le département"),
    "region": ("un fichier par région ({n}, code INSEE : 76…) : tous les territoires classés "
               "de la région, toutes catégories, avec leur rang national et leur rang dans "
               "la région"),
}


def export_area(warehouse: Path, month: dt.date, exports_dir: Path, kind: str, code: str,
                dialect: str = "excel-fr") -> Path:
    """Write one area's file, `<exports_dir>/<YYYY-MM>/departements/<code>.csv` (or
    `regions/`), replacing it atomically; the rest of the month's folder is left as it is.
    Raises ValueError for an unknown kind, dialect, or an area without ranked territory."""
    spec = get_dialect(dialect)
    if kind not in KINDS:
        raise ValueError(f"unknown area kind {kind!r}: departement or region")
    month = first_of_month(month)
    folder = KINDS[kind][0]
    with connect(warehouse) as con:
        files = read_files(con, [month], spec)[month_key(month)]
    data = files.get(f"{folder}/{code}.csv")
    if data is None:
        found = sorted(n.split("/")[1].removesuffix(".csv") for n in files
                       if n.startswith(folder + "/"))
        word = "département" if kind == "departement" else "région"
        raise ValueError(f"no ranked territory in {word} {code!r} for {month_key(month)} "
                         f"(INSEE codes with ranked territories: {', '.join(found) or 'none'})")
    path = Path(exports_dir) / month_key(month) / folder / f"{code}.csv"
    write_bytes_atomically(path, data)
    fsync_dir(path.parent)
    return path


__all__ = ["DIALECTS", "ExportDialect", "export_area", "export_month", "export_months",
           "get_dialect", "months_with_data", "read_month", "readme_text"]
