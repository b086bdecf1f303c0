"""Journalist CSV exports: one folder per month, replaced atomically.

`export_month(warehouse, month, exports_dir, dialect)` writes

    <exports_dir>/<YYYY-MM>/<category>.csv   the Top N of each of the 8 categories
    <exports_dir>/<YYYY-MM>/alertes.csv      accounts that could not be ranked this month
    <exports_dir>/<YYYY-MM>/LISEZMOI.txt     methodology, sources, dates, demo notice

This module also holds the warehouse readers and French formatting helpers that the
chart and report modules share. The warehouse is opened read-only, inside each call.

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

import contextlib
import csv
import datetime as dt
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from ..landing import fsync_dir as _fsync_dir

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

RANKING_HEADERS = ["rang", "évolution", "territoire", "code", "compte", "abonnés",
                   "croissance abonnés", "taux d'engagement (%)", "publications/jour",
                   "portée (%)", "score", "données"]
ALERT_HEADERS = ["territoire", "code", "catégorie", "compte", "alerte", "détail",
                 "dernier mois classé", "dernier rang", "données"]
ALERT_WORDING = {"unavailable": "compte indisponible", "no_snapshot": "aucun relevé",
                 "account_changed": "compte changé (autre identifiant Instagram)"}
SOURCE_WORDING = {
    "graph_api": "API Graph d'Instagram (business_discovery : données publiques des "
                 "comptes professionnels et créateurs)",
    "demo": "données simulées (démo) — aucun appel à Instagram",
    "import": "relevés importés (format business_discovery de l'API Graph d'Instagram)",
}
REFERENCE_DATA = ("Code officiel géographique (COG) 2026 de l'INSEE, via le paquet npm "
                  "@etalab/decoupage-administratif 6.0.0 (Etalab), Licence Ouverte 2.0 ; "
                  "population municipale")
DEMO_NOTICE = "DONNÉES SIMULÉES (démo) : ces chiffres ne décrivent pas les comptes réels"
WEIGHTS_TEXT = [  # docs/methodologie.md, default weights
    ("taux d'engagement", 5,
     ("(mentions J'aime + commentaires) des publications des 30 jours précédant le relevé "
     "÷ (nombre de ces publications × abonnés)")),
    ("portée", 4, "abonnés ÷ population municipale du territoire"),
    ("publications par jour", 3, "publications des 30 jours précédant le relevé ÷ 30"),
    ("abonnés", 2, "nombre d'abonnés au relevé"),
    ("ratio abonnés / abonnements", 1, "abonnés ÷ nombre de comptes suivis (au moins 1)"),
]

FR_MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
             "septembre", "octobre", "novembre", "décembre"]
FR_MONTHS_SHORT = ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août",
                   "sept.", "oct.", "nov.", "déc."]

DIR_MODE, FILE_MODE = 0o755, 0o644     # mkdtemp/mkstemp would leave 0700/0600
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
STABLE = "stable"   # évolution of an unchanged rank: a word, no formula guard needed


# ---------------------------------------------------------------- small helpers

def month_key(month: dt.date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def month_label_fr(month: dt.date) -> str:
    """date(2021, 7, 1) → 'juillet 2021'."""
    return f"{FR_MONTHS[month.month - 1]} {month.year}"


def first_of_month(month: dt.date | dt.datetime | str) -> dt.date:
    if isinstance(month, str):
        month = dt.date.fromisoformat(month + "-01" if len(month) == 7 else month)
    if isinstance(month, dt.datetime):
        month = month.date()
    return month.replace(day=1)


def neutralise(text: str | None) -> str:
    """Guard a text cell against spreadsheet formula injection (prefix `'`)."""
    if text is None:
        return ""
    text = str(text)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def evolution(rank_change: int | None, is_new_entry: bool | None) -> str:
    """How a journalist reads a movement: '▲ 3', '▼ 2', 'stable', 'nouveau'."""
    if is_new_entry:
        return "nouveau"
    if rank_change is None:
        return ""
    if rank_change > 0:
        return f"▲ {rank_change}"
    if rank_change < 0:
        return f"▼ {-rank_change}"
    return STABLE


def fmt_decimal(value: float | None, decimals: int, decimal_sep: str = ".",
                scale: float = 1.0) -> str:
    """Fixed decimals, no thousands separator; '' for null; never '-0.00'."""
    if value is None:
        return ""
    text = f"{value * scale:.{decimals}f}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    return text.replace(".", decimal_sep)


def fmt_int(value: int | None) -> str:
    return "" if value is None else str(int(value))


def territory_code(territory_id: str, code: str | None) -> str:
    return code or territory_id.split(":", 1)[-1]


def _utc(ts: Any) -> dt.datetime | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        return ts.replace(tzinfo=dt.UTC)
    return ts.astimezone(dt.UTC)


# ---------------------------------------------------------------- warehouse readers

@contextlib.contextmanager
def connect(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Read-only connection, closed on exit (never keep one across calls)."""
    warehouse = Path(warehouse)
    if not warehouse.is_file():
        raise FileNotFoundError(f"warehouse not found: {warehouse}")
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        yield con
    finally:
        con.close()


def _dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    schema, name = table.split(".")
    rows = con.execute("""select column_name from information_schema.columns
                          where table_schema = ? and table_name = ?""",
                       [schema, name]).fetchall()
    return {r[0] for r in rows}


def read_categories(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    return _dicts(con.execute("""select category, label, top_n, sort_order
                                 from marts.dim_categories order by sort_order, category"""))


def read_rankings(con: duckdb.DuckDBPyConnection, month: dt.date,
                  category: str | None = None, top_only: bool = True,
                  max_rank: int | None = None) -> list[dict[str, Any]]:
    """Ranked rows of a month (Top N only by default), with the territory code."""
    where = ["r.month = ?"]
    params: list[Any] = [month]
    if category is not None:
        where.append("r.category = ?")
        params.append(category)
    if top_only:
        where.append("r.in_top_n")
    if max_rank is not None:
        where.append("r.rank <= ?")
        params.append(max_rank)
    sql = f"""
        select r.*, t.code as territory_code, c.label as category_label,
               c.sort_order as category_order
        from marts.fct_monthly_rankings r
        left join marts.dim_territories t on t.territory_id = r.territory_id
        left join marts.dim_categories c on c.category = r.category
        where {' and '.join(where)}
        order by c.sort_order, r.category, r.rank
    """
    rows = _dicts(con.execute(sql, params))
    for row in rows:
        row["code"] = territory_code(row["territory_id"], row.get("territory_code"))
        if "snapshot_at" in row:
            row["snapshot_at"] = _utc(row["snapshot_at"])
    return rows


def read_alerts(con: duckdb.DuckDBPyConnection, month: dt.date) -> list[dict[str, Any]]:
    """Alerts of a month, with names, labels and the last month the account was ranked."""
    cols = _columns(con, "marts.account_alerts")
    name = "coalesce(a.territory_name, t.name)" if "territory_name" in cols else "t.name"
    cat = "coalesce(a.category, t.category)" if "category" in cols else "t.category"
    demo = "coalesce(a.is_demo, false)" if "is_demo" in cols else "false"
    # Last ranked month/rank: the table's values when it has them, else computed here.
    last = """(select max(r.month) from marts.fct_monthly_rankings r
               where r.territory_id = a.territory_id and r.month < a.month)"""
    last_rank = """(select r.rank from marts.fct_monthly_rankings r
                    where r.territory_id = a.territory_id and r.month < a.month
                    order by r.month desc limit 1)"""
    if "last_ranked_month" in cols:
        last = f"coalesce(a.last_ranked_month, {last})"
    if "last_rank" in cols:
        last_rank = f"coalesce(a.last_rank, {last_rank})"
    sql = f"""
        select a.territory_id, {name} as territory_name, {cat} as category,
               c.label as category_label, t.code as territory_code, a.handle, a.alert,
               a.detail, {last} as last_ranked_month, {last_rank} as last_rank,
               {demo} as is_demo
        from marts.account_alerts a
        left join marts.dim_territories t on t.territory_id = a.territory_id
        left join marts.dim_categories c on c.category = {cat}
        where a.month = ?
        order by c.sort_order nulls last, territory_name, a.territory_id
    """
    rows = _dicts(con.execute(sql, [month]))
    for row in rows:
        row["code"] = territory_code(row["territory_id"], row.get("territory_code"))
    return rows


@dataclass
class MonthData:
    """Everything the exports of one month need, read in one short connection."""
    month: dt.date
    categories: list[dict[str, Any]]
    rankings: dict[str, list[dict[str, Any]]]   # category → Top N rows by rank
    ranked_counts: dict[str, int]               # category → ranked accounts (all ranks)
    alerts: list[dict[str, Any]]
    snapshot_min: dt.datetime | None
    snapshot_max: dt.datetime | None
    provisional: bool
    sources: list[str]

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [r for c in self.categories for r in self.rankings[c["category"]]]

    @property
    def demo_rows(self) -> int:
        return sum(bool(r["is_demo"]) for r in self.rows) + sum(
            bool(a["is_demo"]) for a in self.alerts)

    @property
    def is_demo(self) -> bool:
        return self.demo_rows > 0

    @property
    def demo_categories(self) -> list[str]:
        return [c["label"] for c in self.categories
                if any(r["is_demo"] for r in self.rankings[c["category"]])]

    @property
    def exported_rows(self) -> int:
        return len(self.rows) + len(self.alerts)


def read_month(warehouse: Path, month: dt.date) -> MonthData:
    month = first_of_month(month)
    with connect(warehouse) as con:
        categories = read_categories(con)
        rows = read_rankings(con, month, top_only=True)
        counts = dict(con.execute("""select category, count(*) from marts.fct_monthly_rankings
                                     where month = ? group by category""", [month]).fetchall())
        alerts = read_alerts(con, month)
        cols = _columns(con, "marts.fct_monthly_rankings")
        snap_min = snap_max = None
        if "snapshot_at" in cols:
            snap_min, snap_max = con.execute(
                """select min(snapshot_at), max(snapshot_at) from marts.fct_monthly_rankings
                   where month = ?""", [month]).fetchone()
        provisional = bool(con.execute(
            """select coalesce(bool_or(is_provisional), false)
               from marts.fct_monthly_rankings where month = ?""", [month]).fetchone()[0])
        sources = []
        if "source" in cols:
            sources = [r[0] for r in con.execute(
                """select distinct source from marts.fct_monthly_rankings
                   where month = ? and source is not null order by 1""", [month]).fetchall()]
    by_cat: dict[str, list[dict[str, Any]]] = {c["category"]: [] for c in categories}
    for row in rows:
        by_cat.setdefault(row["category"], []).append(row)
    known = {c["category"] for c in categories}
    for extra in sorted(set(by_cat) - known):     # a category missing from dim_categories
        categories.append({"category": extra, "label": extra, "top_n": None,
                           "sort_order": 10_000})
    return MonthData(month=month, categories=categories, rankings=by_cat,
                     ranked_counts={k: int(v) for k, v in counts.items()}, alerts=alerts,
                     snapshot_min=_utc(snap_min), snapshot_max=_utc(snap_max),
                     provisional=provisional, sources=sources)


# ---------------------------------------------------------------- CSV rows

def ranking_record(row: dict[str, Any], decimal: str) -> list[str]:
    """One Top N row as CSV cells (text cells neutralised, numbers as numbers)."""
    return [
        fmt_int(row["rank"]),
        neutralise(evolution(row.get("rank_change"), row.get("is_new_entry"))),
        neutralise(row.get("territory_name")),
        neutralise(row.get("code")),
        neutralise(row.get("handle")),
        fmt_int(row.get("followers")),
        fmt_int(row.get("followers_growth")),
        fmt_decimal(row.get("engagement_rate"), 2, decimal, 100),
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
        neutralise(row.get("detail")),
        month_key(last) if last else "",
        fmt_int(row.get("last_rank")),
        "démo" if row.get("is_demo") else "réelles",
    ]


def _write_csv(path: Path, dialect: ExportDialect, header: list[str],
               records: list[list[str]]) -> None:
    with open(path, "w", encoding=dialect.encoding, newline="") as fh:
        writer = csv.writer(fh, delimiter=dialect.delimiter, quotechar='"',
                            quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(records)


# ---------------------------------------------------------------- LISEZMOI

def _fmt_ts(ts: dt.datetime | None) -> str:
    return ts.strftime("%d/%m/%Y %H:%M UTC") if ts else "—"


def readme_text(data: MonthData, dialect: ExportDialect, exported_at: dt.datetime,
                files: list[tuple[str, str]]) -> str:
    label = month_label_fr(data.month)
    lines: list[str] = []
    title = f"OBSERVATOIRE — Classements Instagram des collectivités — {label}"
    lines += [title, "=" * len(title), ""]
    if data.is_demo:
        bar = "!" * (len(DEMO_NOTICE) + 8)
        lines += [bar, f"!!! {DEMO_NOTICE} !!!", bar]
        real = data.exported_rows - data.demo_rows
        lines.append(f"Lignes simulées : {data.demo_rows} sur {data.exported_rows}"
                     + (f" ({real} lignes réelles)." if real else " (toutes)."))
        if data.demo_categories:
            lines.append("Catégories concernées : " + ", ".join(data.demo_categories) + ".")
        lines += ["La colonne « données » indique « démo » ou « réelles » pour chaque ligne.",
                  ""]
    if data.provisional:
        lines += [(f"CLASSEMENT PROVISOIRE : le mois de {label} n'est pas terminé ; les "
                  "chiffres changeront avec les prochains relevés."), ""]
    else:
        lines += [f"Classement définitif du mois de {label}.", ""]
    lines += [
        f"Relevés utilisés : du {_fmt_ts(data.snapshot_min)} au {_fmt_ts(data.snapshot_max)}",
        f"Export réalisé le : {_fmt_ts(exported_at)}",
        f"Format des fichiers CSV : {dialect.name} — {dialect.description}.",
        "",
        "FICHIERS",
    ]
    lines += [f"- {name} : {what}" for name, what in files]
    lines += [
        "",
        "MÉTHODE (v1)",
        ("Chaque compte est évalué sur son relevé de référence : le dernier relevé réussi du "
        "mois. Sans relevé réussi, il n'est pas classé et figure dans alertes.csv."),
        "Cinq indicateurs, pondérés 5, 4, 3, 2 et 1 :",
    ]
    lines += [f"  {i}. {name} (poids {w}) = {how}"
              for i, (name, w, how) in enumerate(WEIGHTS_TEXT, 1)]
    lines += [
        ("Dans chaque catégorie, chaque indicateur est normalisé par son rang centile "
        "(percent_rank : (rang − 1) ÷ (nombre de comptes − 1), de 0 à 1, les ex aequo "
        "partageant le rang le plus bas)."),
        ("Score = 100 × moyenne pondérée des cinq rangs centiles (0 à 100), arrondi à 6 "
        "décimales. Classement par score décroissant ; à score égal, le compte qui a le plus "
        "d'abonnés passe devant, puis l'ordre du code du territoire."),
        ("Un territoire sans population connue n'est pas classé. Les fichiers donnent le "
        "Top 50 de chaque catégorie (Top 20 pour les grandes villes)."),
        "",
        "COLONNES",
        "- rang : place dans la catégorie ce mois-ci.",
        ("- évolution : « ▲ 3 » = gagne 3 places depuis le mois précédent, « ▼ 2 » = en perd "
        "2, « stable » = même rang, « nouveau » = non classé le mois précédent."),
        ("- territoire, code : nom et code officiel (code INSEE de la commune, du département "
        "ou de la région ; SIREN de l'intercommunalité). Le code est un texte : un tableur "
        "qui l'ouvre par double-clic peut effacer le zéro initial (09 → 9, 06083 → 6083) ; "
        "pour le garder, importez cette colonne au format Texte."),
        ("- compte : identifiant Instagram, sans « @ » (volontairement : un « @ » en début de "
        "cellule serait pris pour une formule). Pour le citer, ajoutez « @ » ; profil : "
        "https://www.instagram.com/<compte>/"),
        ("- abonnés : nombre d'abonnés au relevé ; croissance abonnés : différence avec le "
        "relevé de référence du mois précédent (vide s'il n'y en a pas)."),
        ("- taux d'engagement (%) et portée (%) : en pourcentage (5,00 = 5 %) ; "
        "publications/jour ; score sur 100."),
        "- données : « réelles » (relevés Instagram) ou « démo » (simulées).",
        ("- alertes.csv : « compte indisponible » = le dernier relevé du mois a échoué "
        "(compte supprimé, renommé ou non professionnel) ; « aucun relevé » = aucun relevé "
        "ce mois-ci ; dernier mois classé (AAAA-MM) et dernier rang obtenu."),
        "",
        "PROTECTION DES TABLEURS",
        ("Toute cellule de texte commençant par =, +, -, @, une tabulation ou un retour "
        "chariot est précédée d'une apostrophe (') pour qu'aucun tableur ne l'exécute comme "
        "une formule (ex. « '=HYPERLINK(...) », « '+33 Ville »). Les nombres ne sont "
        "pas modifiés (une croissance de -12 reste le nombre -12)."),
        "",
        "SOURCES",
    ]
    srcs = data.sources or ["graph_api"]
    lines += [f"- Données Instagram : {SOURCE_WORDING.get(s, s)}" for s in srcs]
    lines += [f"- Référentiel territorial : {REFERENCE_DATA}.", ""]
    return "\r\n".join(lines) + "\r\n"


# ---------------------------------------------------------------- atomic folder swap

def replace_dir_atomically(final: Path, build: Callable[[Path], None]) -> None:
    """Build a folder in a temp dir next to `final`, then swap it in.

    On any failure while building, the previous `final` is untouched and the temp dir is
    removed. The swap is rename(old → backup), rename(new → final), delete backup; if the
    second rename fails the backup is put back.
    """
    final = Path(final)
    parent = final.parent
    parent.mkdir(parents=True, exist_ok=True)
    with _dir_lock(parent):
        _replace_dir_locked(final, build)


@contextlib.contextmanager
def _dir_lock(folder: Path) -> Iterator[None]:
    """Serialise concurrent swaps in one exports folder: flock on the folder itself
    (POSIX; leaves no lock file behind). A no-op where flock is unavailable."""
    try:
        import fcntl
        fd = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):          # pragma: no cover - Windows
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)                        # closing releases the lock


def _replace_dir_locked(final: Path, build: Callable[[Path], None]) -> None:
    parent = final.parent
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=parent))
    try:
        os.chmod(tmp, DIR_MODE)
        build(tmp)
        _fsync_tree(tmp)
        backup = None
        if final.exists():
            backup = parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(final, backup)
        try:
            os.rename(tmp, final)
        except BaseException:
            if backup is not None:
                os.rename(backup, final)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
    _fsync_dir(parent)


def _fsync_tree(folder: Path) -> None:
    for p in folder.iterdir():
        if p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(folder)




# ---------------------------------------------------------------- entry point

def export_month(warehouse: Path, month: dt.date, exports_dir: Path,
                 dialect: str = "excel-fr") -> list[Path]:
    """Write the month's CSV exports; returns the paths written (categories, alertes, LISEZMOI).

    Re-exporting replaces the whole `<exports_dir>/<YYYY-MM>/` folder atomically; files
    written there by others (e.g. `rapport.html`) are replaced too, so render the report
    after exporting. Raises ValueError for an unknown dialect or a month without data.
    """
    spec = get_dialect(dialect)
    month = first_of_month(month)
    data = read_month(Path(warehouse), month)
    if not data.rows and not data.alerts and not data.ranked_counts:
        raise ValueError(f"no rankings or alerts for {month_key(month)} in {warehouse}: "
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
        text = readme_text(data, spec, exported_at, files)
        with open(tmp / "LISEZMOI.txt", "w", encoding=spec.encoding, newline="") as fh:
            fh.write(text)
        names.append("LISEZMOI.txt")

    replace_dir_atomically(final, build)
    return [final / n for n in names]
