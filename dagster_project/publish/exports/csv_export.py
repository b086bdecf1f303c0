"""Journalist CSV exports: one folder per month, replaced atomically.

`export_month(warehouse, month, exports_dir, dialect)` writes

    <exports_dir>/<YYYY-MM>/<category>.csv   the Top N of each of the 8 categories
    <exports_dir>/<YYYY-MM>/alertes.csv      accounts that could not be ranked this month
    <exports_dir>/<YYYY-MM>/LISEZMOI.txt     methodology, sources, dates, demo notice

Reading the month is `month_data.py`, the LISEZMOI text `lisezmoi.py` (a Jinja2 template),
the French formatting `formatting.py`, the words `texts.py`.

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
from typing import Any

import duckdb

from dagster_project.files import (
    DIR_MODE,
    fsync_dir,
    replace_dir_atomically,
    write_bytes_atomically,
)
from dagster_project.months import month_key
from dagster_project.publish.exports.areas import KINDS, Area, group_by_area
from dagster_project.publish.exports.lisezmoi import readme_text
from dagster_project.publish.exports.month_data import months_with_data, read_month
from dagster_project.publish.exports.texts import ALERT_WORDING, HIDDEN
from dagster_project.publish.formatting import (
    evolution,
    first_of_month,
    fmt_decimal,
    fmt_int,
    neutralise,
)

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



# ---------------------------------------------------------------- CSV rows

def ranking_record(row: dict[str, Any], decimal: str) -> list[str]:
    """One Top N row as CSV cells (text cells neutralised, numbers as numbers)."""
    return [
        fmt_int(row["rank"]),
        neutralise(evolution(row.get("rank_change"), row.get("is_new_entry"))),
        neutralise(row.get("territory_name")),
        neutralise(row.get("code")),
        neutralise(row.get("departement_name")),
        neutralise(row.get("region_name")),
        neutralise(row.get("handle")),
        *kpi_record(row, decimal),
    ]


def area_record(row: dict[str, Any], area: Area, decimal: str) -> list[str]:
    """One ranked territory of a département or région file: national and local rank."""
    local, change = area.local_rank(row), area.local_change(row)
    return [
        neutralise(row.get("category_label") or row.get("category")),
        fmt_int(row["rank"]),
        "oui" if row.get("in_top_n") else "non",
        fmt_int(local),
        "" if local is None else neutralise(evolution(change, change is None)),
        neutralise(row.get("territory_name")),
        neutralise(row.get("code")),
        neutralise(row.get("departement_name")),
        neutralise(row.get("handle")),
        *kpi_record(row, decimal),
    ]


def kpi_record(row: dict[str, Any], decimal: str) -> list[str]:
    """Followers … score and the data label: the cells every ranked row ends with."""
    return [
        fmt_int(row.get("followers")),
        fmt_int(row.get("followers_growth")),
        HIDDEN if row.get("engagement_hidden")
        else fmt_decimal(row.get("engagement_rate"), 2, decimal, 100),
        fmt_decimal(row.get("posts_per_day"), 2, decimal),
        fmt_decimal(row.get("reach"), 3, decimal, 100),
        fmt_decimal(row.get("score"), 2, decimal),
        "démo" if row.get("is_demo") else "réelles",
    ]


def alert_record(row: dict[str, Any]) -> list[str]:
    last = row.get("last_ranked_month")
    return [
        neutralise(row.get("territory_name")),
        neutralise(row.get("code")),
        neutralise(row.get("category_label") or row.get("category")),
        neutralise(row.get("handle")),
        neutralise(ALERT_WORDING.get(row.get("alert"), row.get("alert"))),
        neutralise(row.get("detail_fr")),
        month_key(last) if last else "",
        fmt_int(row.get("last_rank")),
        "démo" if row.get("is_demo") else "réelles",
    ]


def _csv_bytes(dialect: ExportDialect, header: list[str], records: list[list[str]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=dialect.delimiter, quotechar='"',
                        quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(records)
    return out.getvalue().encode(dialect.encoding)


def _write_csv(path: Path, dialect: ExportDialect, header: list[str],
               records: list[list[str]]) -> None:
    _write_file(path, _csv_bytes(dialect, header, records))


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)


# ---------------------------------------------------------------- entry point

def export_month(warehouse: Path | duckdb.DuckDBPyConnection, month: dt.date, exports_dir: Path,
                 dialect: str = "excel-fr") -> list[Path]:
    """Write the month's CSV exports; returns the paths written (categories, alertes, LISEZMOI).
    `warehouse` is a file, or an open read-only connection (many months through one).

    Re-exporting replaces the whole `<exports_dir>/<YYYY-MM>/` folder atomically; files
    written there by others (e.g. `rapport.html`) are replaced too, so render the report
    after exporting. Raises ValueError for an unknown dialect or a month without data.
    """
    spec = get_dialect(dialect)
    month = first_of_month(month)
    data = read_month(warehouse, month, all_ranks=True)
    if not data.rows and not data.alerts and not data.ranked_counts:
        where = "the warehouse" if isinstance(warehouse, duckdb.DuckDBPyConnection) else warehouse
        raise ValueError(f"no rankings or alerts for {month_key(month)} in {where}: "
                         "run the pipeline for that month first")
    exported_at = dt.datetime.now(dt.UTC)
    final = Path(exports_dir) / month_key(month)
    names: list[str] = []

    def build(tmp: Path) -> None:
        files: list[tuple[str, str]] = []
        for cat in data.categories:
            key = cat["category"]
            rows = data.rankings.get(key, [])
            name = f"{key}.csv"
            _write_csv(tmp / name, spec, RANKING_HEADERS,
                       [ranking_record(r, spec.decimal) for r in rows])
            top = f"Top {cat['top_n']}" if cat.get("top_n") else "Top N"
            files.append((name, (f"{cat['label']} — {top} ({len(rows)} comptes sur "
                                f"{data.ranked_counts.get(key, 0)} classés)")))
            names.append(name)
        _write_csv(tmp / "alertes.csv", spec, ALERT_HEADERS,
                   [alert_record(a) for a in data.alerts])
        files.append(("alertes.csv", f"comptes non classés ce mois-ci ({len(data.alerts)})"))
        names.append("alertes.csv")
        for kind, (folder, *_rest) in KINDS.items():
            areas = group_by_area(data.ranked or [], kind)
            (tmp / folder).mkdir(mode=DIR_MODE)
            for area in areas:
                _write_file(tmp / area.file_name, _area_csv(spec, area))
                names.append(area.file_name)
            files.append((f"{folder}/<code>.csv", AREA_FILES[kind].format(n=len(areas))))
        text = readme_text(data, spec, exported_at, files)
        with open(tmp / "LISEZMOI.txt", "w", encoding=spec.encoding, newline="") as fh:
            fh.write(text)
        names.append("LISEZMOI.txt")

    replace_dir_atomically(final, build)
    return [final / n for n in names]


AREA_FILES = {
    "departement": ("un fichier par département ({n}, code INSEE : 32, 2A, 971…) : tous les "
                    "territoires classés du département ce mois-ci, toutes catégories, avec "
                    "leur rang national et leur rang dans le département"),
    "region": ("un fichier par région ({n}, code INSEE : 76…) : tous les territoires classés "
               "de la région, toutes catégories, avec leur rang national et leur rang dans "
               "la région"),
}


def _area_csv(spec: ExportDialect, area: Area) -> bytes:
    return _csv_bytes(spec, AREA_HEADERS, [area_record(r, area, spec.decimal) for r in area.rows])


def export_area(warehouse: Path, month: dt.date, exports_dir: Path, kind: str, code: str,
                dialect: str = "excel-fr") -> Path:
    """Write one area's file, `<exports_dir>/<YYYY-MM>/departements/<code>.csv` (or
    `regions/`), replacing it atomically; the rest of the month's folder is left as it is.
    Raises ValueError for an unknown kind, dialect, or an area without ranked territory."""
    spec = get_dialect(dialect)
    if kind not in KINDS:
        raise ValueError(f"unknown area kind {kind!r}: departement or region")
    month = first_of_month(month)
    data = read_month(warehouse, month, all_ranks=True)
    found = {a.code: a for a in group_by_area(data.ranked or [], kind)}
    area = found.get(code)
    if area is None:
        word = "département" if kind == "departement" else "région"
        raise ValueError(f"no ranked territory in {word} {code!r} for {month_key(month)} "
                         f"(INSEE codes with ranked territories: {', '.join(sorted(found)) or 'none'})")
    path = Path(exports_dir) / month_key(month) / area.file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(path, _area_csv(spec, area))
    fsync_dir(path.parent)
    return path


__all__ = ["DIALECTS", "ExportDialect", "alert_record", "area_record", "evolution",
           "export_area", "export_month",
           "first_of_month", "get_dialect", "months_with_data", "neutralise", "ranking_record",
           "read_month", "readme_text"]
