"""Build the static web site `<data_dir>/site/` from the published warehouse.

    index.html                      latest complete month: Top N of each category, posts, alerts
    classements/<YYYY-MM>/<cat>.html  the full ranking of a month and category (sortable)
    territoires/<kind>-<code>.html  one page per ranked territory: history, KPIs, posts, alerts
    departements/<code>.html, regions/<code>.html, zones.html  each area's ranked territories
                                    (latest month, national and local rank), and their list
    mois.html, methode.html, sources.html, telechargements.html
    donnees/classements/mois=<YYYY-MM>/classements.parquet  every row of
                                    marts.fct_monthly_rankings, a file per month (hive layout)
    donnees/<YYYY-MM>/*.csv         the month's journalist exports (copied, with its
                                    departements/ and regions/ folders)
    assets/                         site.css, site.js, recherche.js (search index), mois.js

Every link is relative: the folder works from file:// and from any static host.
`build_site(..., months=[...])` renders only what those months change (their category
pages, the pages of the territories ranked in them, and the shared pages).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import jinja2
from markupsafe import Markup

from dagster_project.files import DIR_MODE, atomic_path, dir_lock, write_text_atomically
from dagster_project.months import month_key
from dagster_project.publish.exports.areas import KINDS, group_by_area
from dagster_project.publish.exports.texts import ALERT_WORDING
from dagster_project.publish.formatting import month_label_fr
from dagster_project.publish.site.cells import (
    history_rows,
    local_move_cell,
    move_cell,
    ranking_rows,
)
from dagster_project.publish.site.data import (
    SiteData,
    TerritoryHistory,
    area_page,
    ranked_territories,
    read_month_alerts,
    read_month_rankings,
    read_site_data,
    slug,
    territory_batches,
)
from dagster_project.publish.site.method import SOURCES_HTML, method_html
from dagster_project.publish.site.svg import line_chart, year_ticks
from dagster_project.publish.templating import environment
from dagster_project.warehouse import connect, sql_string

HERE = Path(__file__).parent
STATIC = HERE / "static"
INDEX_POSTS_PER_CATEGORY = 3
AREA_POSTS = 10
TERRITORY_POSTS = 24
PARALLEL_TERRITORIES = 2000   # past this many territory pages, one process per core
PARALLEL_MONTHS = 12          # … or this many months of ranking pages
MAX_WORKERS = 4
TERRITORIES = "territoires"             # a page per ranked territory
TRASH = ".site-trash"   # beside the site: what a build replaced, emptied by the next build
DATASET = "classements"              # donnees/classements/: the rankings, hive-partitioned
MONTH_PARQUET = "classements.parquet"   # a month's file: classements/mois=<YYYY-MM>/
STATE_FILE = ".etat.json"  # in the dataset: the last meta.changes row it holds, the columns
MEDIA_TYPES = {"IMAGE": "photo", "VIDEO": "vidéo", "CAROUSEL_ALBUM": "carrousel", "REELS": "reel"}


@dataclass
class SiteStats:
    pages: int
    files: int
    bytes: int
    seconds: float
    months: int


@functools.cache
def _env() -> jinja2.Environment:
    """The site's templates and filters, compiled once per process (each page process
    renders several slices of pages)."""
    return environment(
        HERE / "templates", move_cell=move_cell, local_move_cell=local_move_cell,
        ranking_rows=ranking_rows, history_rows=history_rows, slug=slug,
        media_type=lambda t: MEDIA_TYPES.get(t or "", (t or "—").lower()),
        alert_fr=lambda a: ALERT_WORDING.get(a, a.replace("_", " ")))


# ------------------------------------------------------------------ pages

def _write(path: Path, text: str) -> int:
    """Replace one page whole: a reader of the live site (a partial build updates it in
    place) never sees half a file, and two builds at once each write their own."""
    write_text_atomically(path, text)
    return 1


def _neighbours(months: list[dt.date], month: dt.date) -> tuple[dt.date | None, dt.date | None]:
    i = months.index(month)
    return (months[i - 1] if i > 0 else None, months[i + 1] if i + 1 < len(months) else None)


def territory_context(h: TerritoryHistory, data: SiteData,
                      posts: list[dict[str, Any]], alerts: list[dict[str, Any]]) -> dict[str, Any]:
    rows = h.recent
    last = rows[-1]
    label = next((c["label"] for c in data.categories if c["category"] == last["category"]),
                 last["category"])
    name = last["territory_name"]
    years = year_ticks(data.months[h.first:h.first + h.n])
    return {
        "name": name, "label": label, "code": last["territory_id"].split(":", 1)[-1], "last": last,
        "last_count": data.ranked_counts.get((last["month"], last["category"]), 0),
        "recent": list(reversed(rows)), "counts": data.ranked_counts,
        "rank_chart": Markup(line_chart(h.rank_points, 1, h.rank_hi,
                                        f"Rang de {name} dans sa catégorie, par mois",
                                        invert=True, years=years)),
        "followers_chart": Markup(line_chart(h.followers_points, h.followers_lo, h.followers_hi,
                                             f"Abonnés de @{last['handle']}, par mois",
                                             invert=False, years=years)),
        "posts": posts[:TERRITORY_POSTS], "alerts": alerts,
        "area_links": [(word, name, area_page(kind, code)) for word, kind, code, name in (
            ("département", "departement", last["code_departement"], last["departement_name"]),
            ("région", "region", last["code_region"], last["region_name"]))
            if code and (kind, code) in data.area_codes]}


def _posts_by(data: SiteData, *keys: str) -> dict[tuple, list]:
    grouped: dict[tuple, list] = defaultdict(list)
    for p in data.posts:
        grouped[tuple(p[k] for k in keys)].append(p)
    return grouped


def render_categories(con: duckdb.DuckDBPyConnection, data: SiteData, out: Path,
                      months: list[dt.date], base: dict[str, Any]) -> int:
    """Write the full ranking pages of `months` (every category), a month at a time."""
    template = _env().get_template("category.html.j2")
    labels = {c["category"]: c["label"] for c in data.categories}
    posts = _posts_by(data, "month", "category")
    pages = 0
    for month in months:
        prev, nxt = _neighbours(data.months, month)
        rankings = read_month_rankings(con, month)
        for c in data.categories:
            rows = rankings.get(c["category"], [])
            html = template.render(
                **base, root="../../", month=month, category=c, categories=data.categories,
                rows=rows, prev=prev, next=nxt, filters=area_filters(c["category"], rows),
                is_provisional=month in data.provisional, names=data.names, labels=labels,
                posts=posts.get((month, c["category"]), []))
            pages += _write(out / "classements" / month_key(month) / f"{c['category']}.html", html)
    return pages


def area_filters(category: str, rows: list[dict[str, Any]]) -> dict[str, list[tuple]]:
    """The options of a ranking page's filters: its rows' régions (code, name) and
    départements (code, name, région), by name; none where they would not narrow anything
    (a région per région, a département per département)."""
    regions = {r["code_region"]: r["region_name"] for r in rows if r["code_region"]}
    deps = {r["code_departement"]: (r["departement_name"], r["code_region"])
            for r in rows if r["code_departement"]}
    by_name = functools.partial(sorted, key=lambda o: (o[1] or "", o[0]))
    return {"regions": by_name(regions.items()) if category != "region" else [],
            "departements": by_name((c, n, reg) for c, (n, reg) in deps.items())
            if category not in ("region", "departement") else []}


def render_areas(data: SiteData, out: Path, rankings: dict[str, list[dict[str, Any]]],
                 base: dict[str, Any]) -> int:
    """A page per département and région (`departements/<code>.html`, `regions/…`): the
    latest month's ranked territories of the area by category, with their national and
    local rank, and the area's best posts; and `zones.html`, the list of them all."""
    env = _env()
    template = env.get_template("area.html.j2")
    month = data.latest
    labels = {c["category"]: c["label"] for c in data.categories}
    posts = [p for p in data.posts if p["month"] == month]
    rows = [r for c in data.categories for r in rankings.get(c["category"], [])]
    names = {(kind, code): name for kind, code, name, _ in data.areas}
    by_area = {(kind, a.code): a.rows for kind in KINDS for a in group_by_area(rows, kind)}
    csv_months = area_csv_months(out, data.months)
    pages = 0
    for kind, code, name, region in data.areas:
        mine = by_area.get((kind, code), [])
        ids = {r["territory_id"] for r in mine}
        sections = [(c, [r for r in mine if r["category"] == c["category"]])
                    for c in data.categories]
        pages += _write(out / area_page(kind, code), template.render(
            csv_months=csv_months.get((KINDS[kind][0], code), []),
            **base, root="../", kind=kind, code=code, name=name, month=month,
            sections=[(c, rs) for c, rs in sections if rs], labels=labels, names=data.names,
            counts={c: n for (mo, c), n in data.ranked_counts.items() if mo == month},
            region=(region, names.get(("region", region))) if kind == "departement" else None,
            departements=[(c, n) for k, c, n, reg in data.areas
                          if kind == "region" and k == "departement" and reg == code],
            posts=sorted((p for p in posts if p["territory_id"] in ids),
                         key=lambda p: (-(p["engagement"] or 0), p["media_id"]))[:AREA_POSTS]))
    pages += _write(out / "zones.html", env.get_template("zones.html.j2").render(
        **base, root="", month=month,
        regions=[(code, name, [(c, n) for k, c, n, reg in data.areas
                               if k == "departement" and reg == code])
                 for kind, code, name, _ in data.areas if kind == "region"],
        orphans=[(c, n) for k, c, n, reg in data.areas
                 if k == "departement" and ("region", reg) not in names]))
    # a partial build updates the site in place: drop the page of an area left without any
    # ranked territory (nothing links to it any more)
    kept = {out / area_page(kind, code) for kind, code, _, _ in data.areas}
    for folder in AREA_FOLDERS:
        for page in (out / folder).glob("*.html"):
            if page not in kept:
                page.unlink(missing_ok=True)
    return pages


def area_csv_months(out: Path, months: list[dt.date]) -> dict[tuple[str, str], list[dt.date]]:
    """(area folder, code) → the months with that area's CSV download, newest first: one
    directory listing per month and folder, not one lookup per area and month."""
    found: dict[tuple[str, str], list[dt.date]] = defaultdict(list)
    for month in reversed(months):
        for folder in AREA_FOLDERS:
            try:
                names = os.listdir(out / "donnees" / month_key(month) / folder)
            except FileNotFoundError:
                continue
            for name in names:
                if name.endswith(".csv"):
                    found[(folder, name[:-4])].append(month)
    return found


def render_territories(con: duckdb.DuckDBPyConnection, data: SiteData, folder: Path,
                       territory_ids: list[str], base: dict[str, Any]) -> int:
    """Write the pages of `territory_ids` into `folder`, a batch of histories at a time."""
    template = _env().get_template("territory.html.j2")
    posts = _posts_by(data, "territory_id")
    pages = 0
    for history, alerts in territory_batches(con, territory_ids, data.months):
        for tid, h in history.items():
            ctx = territory_context(h, data, posts.get((tid,), []), alerts.get(tid, []))
            pages += _write(folder / f"{slug(tid)}.html",
                            template.render(**base, root="../", **ctx))
    return pages


RENDERERS = {"categories": render_categories, "territories": render_territories}
_shared: tuple = ()    # (warehouse, data, destinations, base) of a worker process, set once


def _init_worker(warehouse: Path, data: SiteData, destinations: dict[str, Path],
                 base: dict[str, Any]) -> None:
    global _shared
    _shared = (warehouse, data, destinations, base)


def _worker(kind: str, items: list) -> int:
    warehouse, data, destinations, base = _shared
    with connect(warehouse, read_only=True) as con:
        return RENDERERS[kind](con, data, destinations[kind], items, base)


def render_months_and_territories(con: duckdb.DuckDBPyConnection, warehouse: Path,
                                  data: SiteData, out: Path, months: list[dt.date],
                                  territory_ids: list[str], base: dict[str, Any],
                                  territories_dir: Path) -> int:
    """The month ranking pages (into `out`) and the territory pages (into
    `territories_dir`), most of the site. Past PARALLEL_TERRITORIES territories or
    PARALLEL_MONTHS months, they are shared out between one process per core, each with its
    own read-only connection to the same file (callers' main scripts need the usual
    `if __name__ == "__main__"` guard, as console scripts have)."""
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    if workers < 2 or (len(territory_ids) < PARALLEL_TERRITORIES
                       and len(months) < PARALLEL_MONTHS):
        return (render_categories(con, data, out, months, base)
                + render_territories(con, data, territories_dir, territory_ids, base))
    n = workers * 4                         # interleaved slices balance big and small ones
    jobs = ([("categories", months[i::n]) for i in range(n) if months[i::n]]
            + [("territories", territory_ids[i::n]) for i in range(n) if territory_ids[i::n]])
    destinations = {"categories": out, "territories": territories_dir}
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker,
                             initargs=(warehouse, data, destinations, base)) as pool:
        return sum(pool.map(_worker, *zip(*jobs)))


@contextlib.contextmanager
def territory_pages(out: Path, *, full: bool, removals: list[threading.Thread]) -> Iterator[Path]:
    """The folder to write territory pages into. A full build writes `territoires/` of its
    new site directly. A partial build writes a new folder, adds the pages it did not
    render (hard links), and swaps it in for `territoires/`: every page a new file, none
    renamed over an old one, and a reader sees the old pages or the new ones.

    The old folder goes to the trash beside the site (`.site-trash/`, never published), which
    the next build empties by a thread (added to `removals`; the caller joins it) while it
    renders. On these disks a small file costs about 1 ms to write out; replacing or deleting
    36 000 pages written minutes before waits for that (35-50 s at national scale), deleting
    them a build later does not."""
    trash = out.parent / TRASH
    if trash.is_dir():
        removal = threading.Thread(target=_remove_all, args=(list(trash.iterdir()),))
        removal.start()
        removals.append(removal)
    final = out / TERRITORIES
    final.mkdir(parents=True, exist_ok=True)
    if full:
        yield final
        return
    new = Path(tempfile.mkdtemp(prefix=f".{TERRITORIES}-", dir=out))
    try:
        os.chmod(new, DIR_MODE)
        yield new
        trash.mkdir(exist_ok=True)
        with dir_lock(out):             # two builds at once: the second keeps the first's pages
            rendered = set(os.listdir(new))
            for name in os.listdir(final):
                if name not in rendered and not name.startswith("."):
                    _link_or_copy(final / name, new / name)
            os.rename(final, trash / f"{TERRITORIES}-{uuid.uuid4().hex[:12]}")
            os.rename(new, final)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise


def _remove_all(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:                     # a file system without hard links
        shutil.copy2(src, dst)


def render_pages(con: duckdb.DuckDBPyConnection, warehouse: Path, data: SiteData, out: Path,
                 months: list[dt.date], *, full: bool, removals: list[threading.Thread]) -> int:
    """Render the pages `months` change; rankings are read a month at a time, territory
    histories a batch of territories at a time (memory does not grow with history)."""
    env = _env()
    built_at = dt.datetime.now(dt.UTC).strftime("%d/%m/%Y à %H:%M UTC")
    base = {"is_demo": data.is_demo, "built_at": built_at}
    labels = {c["category"]: c["label"] for c in data.categories}
    posts_by_mc = _posts_by(data, "month", "category")
    # A month's pages, plus the month before (its "next month" link appears).
    page_months = set(months)
    if not full:
        page_months |= {p for p, _ in (_neighbours(data.months, mo) for mo in months) if p}
    with territory_pages(out, full=full, removals=removals) as territories_dir:
        pages = render_months_and_territories(con, warehouse, data, out, sorted(page_months),
                                              ranked_territories(con, months), base,
                                              territories_dir)

    latest = data.latest
    provisional = max(data.provisional) if data.provisional else None
    if provisional == latest:
        provisional = None
    index_posts = [p for c in data.categories
                   for p in posts_by_mc.get((latest, c["category"]), [])[:INDEX_POSTS_PER_CATEGORY]]
    latest_rankings = read_month_rankings(con, latest)
    pages += _write(out / "index.html", env.get_template("index.html.j2").render(
        **base, root="", month=latest, provisional=provisional, categories=data.categories,
        rankings=latest_rankings, areas=data.areas,
        counts={c: n for (mo, c), n in data.ranked_counts.items() if mo == latest},
        posts=index_posts, names=data.names, labels=labels, ranked_ids=data.names,
        alerts=sorted(read_month_alerts(con, latest),
                      key=lambda a: data.names.get(a["territory_id"], a["territory_id"]))))
    pages += _write(out / "mois.html", env.get_template("mois.html.j2").render(
        **base, root="", months=data.months, provisional=data.provisional,
        categories=data.categories, counts=data.ranked_counts))
    page = env.get_template("page.html.j2")
    pages += _write(out / "methode.html", page.render(**base, root="", title="Méthode",
                                                       body=method_html()))
    pages += _write(out / "sources.html", page.render(**base, root="", title="Sources et licences",
                                                       body=SOURCES_HTML))
    return pages


def write_assets(data: SiteData, out: Path) -> None:
    assets = out / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    for name in ("site.css", "site.js"):
        shutil.copyfile(STATIC / name, assets / name)
    compact = json.dumps([list(t) for t in data.search], ensure_ascii=False, separators=(",", ":"))
    (assets / "recherche.js").write_text(
        f"/* Territoires classés : nom, code, page, catégorie. */\nwindow.OBS_TERRITOIRES={compact};\n",
        encoding="utf-8")
    months = json.dumps([[month_key(mo), month_label_fr(mo)] for mo in data.months],
                        ensure_ascii=False, separators=(",", ":"))
    (assets / "mois.js").write_text(f"window.OBS_MOIS={months};\n", encoding="utf-8")


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


AREA_FOLDERS = tuple(folder for folder, *_ in KINDS.values())   # departements, regions


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


def _size_text(n: int) -> str:
    return f"{n / 1e6:.1f} Mo".replace(".", ",") if n >= 1e5 else f"{n / 1e3:.0f} ko"


def build_site(warehouse: Path, exports_dir: Path, site_dir: Path,
               months: list[dt.date] | None = None) -> SiteStats:
    """Build the site (all months when `months` is None) and return what was written.

    A full build is written to a temporary folder next to `site_dir` and swapped in, so a
    reader never sees half a site; a partial build updates the existing folder in place
    (and falls back to a full build when there is none yet).
    """
    start = time.monotonic()
    site_dir = Path(site_dir)
    full = months is None or not (site_dir / "index.html").exists()
    warehouse = Path(warehouse).resolve()   # the published copy in force, for every reader
    with connect(warehouse, read_only=True) as con:
        data = read_site_data(con)
        if not data.months:
            raise ValueError(f"no ranking in {warehouse}: run the pipeline before building the site")
        full = full or set(data.months) <= set(months)
        run_months = data.months if full else sorted(set(months) & set(data.months))
        site_dir.parent.mkdir(parents=True, exist_ok=True)
        out = Path(tempfile.mkdtemp(prefix=".site-", dir=site_dir.parent)) if full else site_dir
        removals: list[threading.Thread] = []
        try:
            pages = render_pages(con, warehouse, data, out, run_months, full=full,
                                 removals=removals)
            write_assets(data, out)
            # after the pages, not meanwhile: sorting every ranking row for the Parquet
            # file beside the page processes took the national run over 2 GiB
            rows, size = write_downloads(con, exports_dir, out, run_months, data.months)
            # after the downloads: each area page links to the area's file of every month
            pages += render_areas(data, out, read_month_rankings(con, data.latest), {
                "is_demo": data.is_demo,
                "built_at": dt.datetime.now(dt.UTC).strftime("%d/%m/%Y à %H:%M UTC")})
            env = _env()
            pages += _write(out / "telechargements.html", env.get_template(
                "telechargements.html.j2").render(
                is_demo=data.is_demo, root="", parquet_rows=rows, parquet_size=_size_text(size),
                built_at=dt.datetime.now(dt.UTC).strftime("%d/%m/%Y à %H:%M UTC"),
                files=download_files(out)))
            if full:                # the old site to the trash, emptied by the next build
                os.chmod(out, 0o755)
                if site_dir.exists():
                    (site_dir.parent / TRASH).mkdir(exist_ok=True)
                    site_dir.rename(site_dir.parent / TRASH / f"site-{uuid.uuid4().hex[:12]}")
                out.rename(site_dir)
        except BaseException:
            if full:
                shutil.rmtree(out, ignore_errors=True)
            raise
        finally:
            for removal in removals:
                removal.join()
    files = list(_files(site_dir))
    return SiteStats(pages=sum(name.endswith(".html") for name, _ in files), files=len(files),
                     bytes=sum(size for _, size in files),
                     seconds=round(time.monotonic() - start, 1), months=len(run_months))


def _files(folder: Path) -> Iterator[tuple[str, int]]:
    """(name, size) of every file under `folder` (os.scandir: a national site has 40 000),
    but the hidden ones: pages being written by another build at the same time."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from _files(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                try:
                    size = entry.stat().st_size
                except FileNotFoundError:   # removed meanwhile
                    continue
                yield entry.name, size
