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
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import jinja2
from markupsafe import Markup

from dagster_project.files import DIR_MODE, dir_lock, write_text_atomically
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
from dagster_project.publish.site.downloads import (
    AREA_FOLDERS,
    download_files,
    size_text,
    write_downloads,
)
from dagster_project.publish.site.method import SOURCES_HTML, method_html
from dagster_project.publish.site.svg import line_chart, year_ticks
from dagster_project.publish.templating import environment
from dagster_project.warehouse import connect

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
MEDIA_TYPES = {"IMAGE": "photo", "VIDEO": "vidéo", "CAROUSEL_ALBUM": "carrousel", "REELS": "reel"}
# Every page's <meta http-equiv="Content-Security-Policy">: the site loads its own scripts and
# style sheet and nothing else (no inline script, style or handler; charts are inline SVG
# styled by site.css). A web server adds frame-ancestors, which a <meta> cannot carry
# (docs/site.md, "HTTP headers").
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "base-uri 'none'; form-action 'self'")
# What a web server sends with every file of the site (docs/site.md gives them for nginx;
# `observatoire site --serve` sends them too).
HTTP_HEADERS = {"Content-Security-Policy": CSP + "; frame-ancestors 'none'",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                "X-Frame-Options": "DENY"}


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
    env = environment(
        HERE / "templates", move_cell=move_cell, local_move_cell=local_move_cell,
        ranking_rows=ranking_rows, history_rows=history_rows, slug=slug,
        media_type=lambda t: MEDIA_TYPES.get(t or "", (t or "—").lower()),
        alert_fr=lambda a: ALERT_WORDING.get(a, a.replace("_", " ")))
    env.globals["csp"] = Markup(CSP)      # a constant: its quotes written as they are
    return env


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
                is_demo=data.is_demo, root="", parquet_rows=rows, parquet_size=size_text(size),
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
