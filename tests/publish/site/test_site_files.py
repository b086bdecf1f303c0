"""The site's files: every link resolves, the Parquet dataset, best posts, partial builds."""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

import duckdb
import pytest
from pipeline_support import BIN, E2E_TO, ROOT, project_env, run_cli

from dagster_project.publish.formatting import fr_number, fr_pct, signed
from dagster_project.publish.site.build import CSP, territory_pages
from dagster_project.publish.site.data import RANKING_COLUMNS, territory_batches
from dagster_project.publish.site.method import method_html
from dagster_project.publish.site.svg import line_chart, year_ticks
from dagster_project.publish.urls import safe_url

LINK = re.compile(r'(?:href|src)="([^"]*)"')


def broken_links(site: Path) -> tuple[int, list[str]]:
    """Every href/src of every page that is not an outside link must name an existing file."""
    checked, broken = 0, []
    for page in site.rglob("*.html"):
        for link in LINK.findall(page.read_text(encoding="utf-8")):
            if link.startswith(("https://", "http://", "mailto:", "#")):
                continue
            checked += 1
            target = (page.parent / unquote(urlsplit(link).path)).resolve()
            if not target.is_file() or site.resolve() not in target.parents:
                broken.append(f"{page.relative_to(site)} → {link}")
    return checked, broken


@pytest.mark.slow
def test_every_link_resolves_and_nothing_comes_from_another_host(demo_run):
    site = demo_run / "site"
    checked, broken = broken_links(site)
    assert checked > 10_000 and broken == []
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        # outside hosts only as plain links (Instagram profiles and posts), never loaded
        assert not re.search(r'(?:src|<link[^>]*href)="(?:https?:)?//', html), page
        assert "Données simulées (démo)" in html, page
        # issue 43: the CSP on every page; no link but the site's own and https to Instagram
        assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in html, page
        assert all(safe_url(link, relative=True) == link for link in LINK.findall(html)), page
    assert not re.search(r"https?://|fetch\(|XMLHttpRequest", (site / "assets" / "site.js").read_text())


@pytest.mark.slow
def test_link_checker_sees_a_broken_link(tmp_path):
    (tmp_path / "a.html").write_text('<a href="b.html">b</a><img src="assets/x.png">')
    (tmp_path / "b.html").write_text('<a href="a.html#top">a</a><a href="https://example.org/">x</a>')
    assert broken_links(tmp_path) == (3, ["a.html → assets/x.png"])


@pytest.mark.slow
def test_parquet_dataset_has_exactly_the_rankings(demo_run):
    site = demo_run / "site"
    dataset = f"""(select * exclude (mois) from read_parquet(
        '{site}/donnees/classements/*/*.parquet', hive_partitioning = true))"""
    with duckdb.connect(str(demo_run / "published" / "warehouse.duckdb"), read_only=True) as con:
        n = con.execute("select count(*) from marts.fct_monthly_rankings").fetchone()[0]
        assert n > 1000
        assert con.execute(f"select count(*) from {dataset}").fetchone()[0] == n
        for a, b in ((dataset, "marts.fct_monthly_rankings"), ("marts.fct_monthly_rankings", dataset)):
            assert con.execute(f"select count(*) from (from {a} except all from {b})").fetchone()[0] == 0
    assert any((site / "donnees" / E2E_TO).glob("*.csv"))
    page = (site / "telechargements.html").read_text(encoding="utf-8")
    assert f'href="donnees/classements/mois={E2E_TO}/classements.parquet"' in page
    assert "classements/*/*.parquet" in page


@pytest.mark.slow
def test_top_posts_follow_the_ranking_rule(demo_run):
    """Recompute one month's best posts per category from raw.media, independently of dbt."""
    with duckdb.connect(str(demo_run / "published" / "warehouse.duckdb"), read_only=True) as con:
        month = dt.date.fromisoformat(E2E_TO + "-01")
        got = con.execute("""select category, post_rank, media_id, interactions, engagement
                             from marts.fct_top_posts where month = ?
                             order by category, post_rank""", [month]).fetchall()
        ranked = con.execute("""select category, handle, snapshot_at, followers
                                from marts.fct_monthly_rankings where month = ?""", [month]).fetchall()
        media = con.execute("""select distinct handle, fetched_at, media_id, posted_at,
                                      like_count + coalesce(comments_count, 0)
                               from raw.media   -- posts with hidden likes are never best posts
                               where month = ? and like_count is not null""", [month]).fetchall()
    by_snapshot: dict = {}
    for handle, fetched_at, media_id, posted_at, inter in media:
        by_snapshot.setdefault((handle, fetched_at), []).append((media_id, posted_at, inter))
    candidates: dict = {}
    for category, handle, snapshot_at, followers in ranked:
        for media_id, posted_at, inter in by_snapshot.get((handle, snapshot_at), []):
            if snapshot_at - dt.timedelta(days=30) <= posted_at <= snapshot_at and followers:
                candidates.setdefault(category, []).append((-inter / followers, -inter, media_id))
    expected = [(c, i + 1, mid, -ni) for c in sorted(candidates)
                for i, (_, ni, mid) in enumerate(sorted(candidates[c])[:10])]
    assert [r[:4] for r in got] == expected
    assert len({r[0] for r in got}) == 8


@pytest.mark.slow
def test_one_month_rebuild_touches_only_that_month(demo_copy):
    site = demo_copy / "site"
    old_month = site / "classements" / "2021-06" / "region.html"
    before = old_month.stat().st_mtime_ns
    stale = site / "departements" / "99.html"      # an area no longer ranked
    stale.write_text("old page", encoding="utf-8")
    proc = run_cli(["site", "--month", E2E_TO], demo_copy)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not stale.exists() and (site / "departements" / "32.html").is_file()
    assert "1 month(s) rendered" in proc.stderr
    assert old_month.stat().st_mtime_ns == before
    assert (site / "classements" / E2E_TO / "region.html").stat().st_mtime_ns > before
    assert broken_links(site)[1] == []
    assert [p.name for p in site.iterdir() if p.name.startswith(".")] == []   # nothing left over
    bad = run_cli(["site", "--month", "2021-13"], demo_copy)
    assert bad.returncode != 0 and "2021-13" in bad.stderr


def test_a_partial_build_swaps_in_a_new_territory_folder(tmp_path):
    """Pages are written as new files into a new folder (never renamed over an old page);
    the pages it did not render are carried over; the old folder goes to the trash beside
    the site, which the next build empties."""
    site = tmp_path / "site"
    old = site / "territoires"
    old.mkdir(parents=True)
    (old / "commune-1.html").write_text("kept")
    (old / "commune-2.html").write_text("old")

    def build(text: str) -> None:
        removals: list = []
        with territory_pages(site, full=False, removals=removals) as folder:
            assert folder != old and folder.parent == site
            (folder / "commune-2.html").write_text(text)
            assert (old / "commune-2.html").read_text() != text   # readers see the old page
        for removal in removals:
            removal.join()

    build("new")
    assert {p.name: p.read_text() for p in old.iterdir()} == {"commune-1.html": "kept",
                                                             "commune-2.html": "new"}
    assert [p.name for p in site.iterdir()] == ["territoires"]
    trashed = list((tmp_path / ".site-trash").iterdir())
    assert [(p / "commune-2.html").read_text() for p in trashed] == ["old"]
    build("newer")                       # empties the trash, puts its own old folder there
    assert (old / "commune-2.html").read_text() == "newer"
    assert [(p / "commune-2.html").read_text()
            for p in (tmp_path / ".site-trash").iterdir()] == ["new"]
    # a build that fails leaves the pages as they were, and no folder behind
    with pytest.raises(RuntimeError), territory_pages(site, full=False, removals=[]) as folder:
        (folder / "commune-2.html").write_text("half")
        raise RuntimeError("boom")
    assert (old / "commune-2.html").read_text() == "newer"
    assert [p.name for p in site.iterdir()] == ["territoires"]


def chart_history(ranks: list[int | None], followers: list[int | None]):
    """The TerritoryHistory of one territory ranked in the months where `ranks` has a value,
    read through `territory_batches` from a minimal warehouse in memory."""
    months = [dt.date(2019, 11, 1) + dt.timedelta(days=31 * i) for i in range(len(ranks))]
    months = [mo.replace(day=1) for mo in months]
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute(f"""create table marts.fct_monthly_rankings as select * from (values
        {", ".join(f"(date '{mo}', {r}, {f})" for mo, r, f in zip(months, ranks, followers)
                   if r is not None)}) v(month, rank, followers)""")
    for col in RANKING_COLUMNS:
        if col not in ("month", "rank", "followers"):
            kind = "varchar" if col in ("territory_id", "category") else "integer"
            value = "'commune:1'" if col == "territory_id" else "null"
            con.execute(f"alter table marts.fct_monthly_rankings add column {col} {kind} "
                        f"default {value}")
    con.execute("create table marts.account_alerts (month date, territory_id varchar, "
                "handle varchar, alert varchar, detail_fr varchar)")
    history, _ = next(territory_batches(con, ["commune:1"], months))
    return history["commune:1"], months


def test_line_chart_breaks_on_missing_months_and_puts_rank_1_on_top():
    h, months = chart_history([3, 1, None, 2, 2, 5, None, 4], [10, 20, None, 30, 30, 50, None, 40])
    assert (h.first, h.n, h.rank_hi, h.followers_lo, h.followers_hi) == (0, 8, 5, 10, 50)
    assert len(h.recent) == 6 and h.recent[-1]["month"] == months[-1]
    svg = line_chart(h.rank_points, 1, h.rank_hi, "Rang", invert=True,
                     years=year_ticks(months[h.first:h.first + h.n]))
    # two runs of months drawn as lines, the lone last month as a dot, then the end dot
    assert svg.count("<polyline") == 2 and svg.count("<circle") == 2
    assert "<title>Rang</title>" in svg and ">2020</text>" in svg
    def pt(i: int, y: float) -> str:   # month i of 8 on a 572-wide plot, one decimal
        return f"{56 + 572 / 7 * i:.1f},{y:.1f}"
    # ranks 3, 1 on an axis from 1 (top, y 12) to 5 (bottom, y 172): rank 1 above rank 3
    assert h.rank_points[0] == f"{pt(0, 12 + 160 / 4 * 2)} {pt(1, 12)}"
    assert h.rank_points[2] == pt(7, 12 + 160 / 4 * 3)
    # followers 30, 30, 50 on an axis from 10 (bottom, y 172) to 50 (top, y 12)
    assert h.followers_points[1] == " ".join([pt(3, 172 - 160 / 40 * 20),
                                             pt(4, 172 - 160 / 40 * 20), pt(5, 12)])
    assert line_chart([], 1, 2, "vide", invert=True, years="") == ""


def test_one_month_chart_is_a_centred_dot_on_a_flat_axis():
    h, _ = chart_history([1], [500])
    assert (h.n, h.rank_hi, h.followers_lo, h.followers_hi) == (1, 2, 500, 501)
    assert h.rank_points == ["342.0,12.0"] and h.followers_points == ["342.0,172.0"]


def test_french_numbers():
    assert fr_number(1234.5, 1) == "1\u202f234,5"
    assert fr_pct(0.05123) == "5,12\u00a0%"
    assert signed(-1200) == "−1\u202f200" and signed(3) == "+3" and signed(None) == "—"


def test_method_page_from_the_docs_or_built_in(tmp_path):
    assert "Méthode" in method_html(tmp_path / "absent.md")
    doc = tmp_path / "methodologie.md"
    doc.write_text("# Méthode\n\nVoir [le README](../README.md) et [Insee](https://www.insee.fr/).\n")
    html = method_html(doc)
    assert "<h1>Méthode</h1>" in html and "README.md" not in html
    assert '<a href="https://www.insee.fr/">Insee</a>' in html


@pytest.mark.slow
def test_serve_answers_on_localhost(demo_copy):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(BIN / "observatoire"), "site", "--month", E2E_TO, "--serve",
                             "--port", str(port)], cwd=ROOT, env=project_env(demo_copy),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline, body = time.monotonic() + 300, None
        while body is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as r:
                    body = r.read().decode()
            except OSError:
                time.sleep(0.5)
        assert body and '<html lang="fr">' in body
    finally:
        with contextlib.suppress(ProcessLookupError):   # its own group: all it started
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.mark.slow
def test_pages_rendered_in_parallel_equal_the_sequential_ones(demo_run, tmp_path, monkeypatch):
    """At national scale (or over many months) the ranking and territory pages are shared
    out between processes, each with its own read-only connection: the pages must be the
    same, byte for byte."""
    from dagster_project.publish.site import build

    published = demo_run / "published" / "warehouse.duckdb"
    built_at = re.compile(r"\d\d/\d\d/\d{4} à \d\d:\d\d UTC")

    def pages(parallel_from: int, workers: int) -> dict[str, str]:
        monkeypatch.setattr(build, "PARALLEL_TERRITORIES", parallel_from)
        monkeypatch.setattr(build.os, "cpu_count", lambda: workers)
        out = tmp_path / f"site-{parallel_from}"
        build.build_site(published, demo_run / "exports", out)
        return {str(p.relative_to(out)): built_at.sub("", p.read_text(encoding="utf-8"))
                for p in out.rglob("*.html")}

    sequential, parallel = pages(10**9, 1), pages(1, 2)
    assert sum(k.startswith("classements") for k in sequential) >= 8
    assert sum(k.startswith("territoires") for k in sequential) > 100
    assert parallel == sequential
