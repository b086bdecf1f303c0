"""The site's département and région pages on the demo run, against the marts: one page per
area with a ranked territory, its rows in national order with their local ranks, the links
to them (index, zones, territory pages, search) and the filters' data on the ranking pages."""
from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow

ROW = re.compile(r'<tr[^>]*>(?:<td class="n">(\d+)</td>)?.*?territoires/([^"]+)\.html', re.DOTALL)


def query(demo_run: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(demo_run / "published" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


@pytest.fixture(scope="module")
def latest(demo_run) -> str:
    return query(demo_run, "select strftime(max(month), '%Y-%m') from marts.fct_monthly_rankings")[0][0]


def area_rows(demo_run: Path, latest: str, kind: str) -> dict[str, list[tuple]]:
    """Area code → [(category, territory page slug, local rank)], category order then rank."""
    rows = query(demo_run, f"""
        select code_{kind}, category, replace(territory_id, ':', '-'), rank_in_{kind}
        from marts.fct_monthly_rankings join marts.dim_categories c using (category)
        where strftime(month, '%Y-%m') = ? and code_{kind} is not null
          and not (? = 'departement' and category = 'region')
        order by c.sort_order, rank""", [latest, kind])
    out: dict[str, list[tuple]] = defaultdict(list)
    for code, category, slug, local in rows:
        out[code].append((category, slug, local))
    return out


def page_rows(html: str) -> list[tuple]:
    """[(category, territory slug, local rank)] of an area page's tables."""
    got = []
    for section in re.findall(r'<section id="([a-z_]+)">(.*?)</section>', html, re.DOTALL):
        category, body = section
        if category == "publications":
            continue
        tbody = body.split("<tbody>", 1)[1]
        for local, slug in ROW.findall(tbody):
            got.append((category, slug, int(local) if local else None))
    return got


@pytest.mark.parametrize("kind", ["departement", "region"])
def test_one_page_per_area_with_the_marts_rows_and_local_ranks(demo_run, latest, kind):
    site = demo_run / "site"
    want = area_rows(demo_run, latest, kind)
    pages = sorted(p.stem for p in (site / f"{kind}s").glob("*.html"))
    assert pages == sorted(want) and len(pages) >= (90 if kind == "departement" else 13)
    with_local = 0
    for code, rows in want.items():
        html = (site / f"{kind}s" / f"{code}.html").read_text(encoding="utf-8")
        assert page_rows(html) == rows, code
        with_local += sum(local is not None for _c, _s, local in rows)
        # the area's file of each month is linked, and the site has it
        for href in re.findall(rf'href="\.\./(donnees/[0-9-]+/{kind}s/{re.escape(code)}\.csv)"', html):
            assert (site / href).is_file(), href
        assert f'donnees/{latest}/{kind}s/{code}.csv"' in html
    assert with_local > 1_000


def test_links_to_the_area_pages(demo_run, latest):
    site = demo_run / "site"
    zones = (site / "zones.html").read_text(encoding="utf-8")
    index = (site / "index.html").read_text(encoding="utf-8")
    for kind in ("departement", "region"):
        for page in (site / f"{kind}s").glob("*.html"):
            link = f'href="{kind}s/{page.name}"'
            assert link in zones and link in index, page.name
    # a commune's page links to its département and its région
    (slug, dep, reg), = query(demo_run, """select replace(territory_id, ':', '-'), code_departement,
        code_region from marts.fct_monthly_rankings where strftime(month, '%Y-%m') = ?
        and category = 'petite_ville' and code_departement = '32' order by rank limit 1""", [latest])
    html = (site / "territoires" / f"{slug}.html").read_text(encoding="utf-8")
    assert f'href="../departements/{dep}.html">Gers</a>' in html
    assert f'href="../regions/{reg}.html">Occitanie</a>' in html
    # the search finds areas by name and code
    text = (site / "assets" / "recherche.js").read_text(encoding="utf-8")
    entries = json.loads(text.split("window.OBS_TERRITOIRES=", 1)[1].rstrip().rstrip(";"))
    assert ["Gers", "32", "departements/32.html"] in [e[:3] for e in entries]
    assert ["Occitanie", "76", "regions/76.html"] in [e[:3] for e in entries]


def test_ranking_pages_carry_each_rows_region_and_departement(demo_run, latest):
    """The filter of a category page reads data-r / data-d on each row: as in the marts."""
    html = (demo_run / "site" / "classements" / latest / "petite_ville.html").read_text(encoding="utf-8")
    got = re.findall(r'<tr(?: class="top")? data-r="([^"]*)" data-d="([^"]*)">', html)
    want = query(demo_run, """select coalesce(code_region, ''), coalesce(code_departement, '')
        from marts.fct_monthly_rankings where strftime(month, '%Y-%m') = ?
        and category = 'petite_ville' order by rank""", [latest])
    assert got == [tuple(w) for w in want] and len(got) > 500
    regions = set(re.findall(r'<select data-attr="r">(.*?)</select>', html, re.DOTALL)[0].split("option value=")[2:])
    assert len(regions) == len({r for r, _d in got if r})
