"""The site in headless Chromium, from file://: content, search, no error, no outside request."""
from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import duckdb
import pytest
from cdp import CHROMIUM, Browser

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install -y chromium; .ci/run does it)")]

DESKTOP, PHONE = (1280, 900), (390, 844)


def fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text)
                   if unicodedata.category(c) != "Mn").lower()


@pytest.fixture(scope="module")
def site(demo_run) -> Path:
    folder = demo_run / "site"
    assert (folder / "index.html").exists(), "observatoire run did not build the site"
    return folder


@pytest.fixture(scope="module")
def facts(demo_run) -> dict:
    with duckdb.connect(str(demo_run / "published" / "warehouse.duckdb"), read_only=True) as con:
        month = con.execute("""select max(month) from marts.fct_monthly_rankings
                               where not is_provisional""").fetchone()[0]
        labels = [r[0] for r in con.execute(
            "select label from marts.dim_categories order by sort_order").fetchall()]
        first = con.execute("""select r.territory_id, r.territory_name, r.category from marts.fct_monthly_rankings r
                               join marts.dim_categories c using (category)
                               where month = ? and rank = 1 order by c.sort_order limit 1""",
                            [month]).fetchone()
        accented = con.execute("""select territory_id, territory_name from marts.fct_monthly_rankings
                                  where month = ? and territory_name <> strip_accents(territory_name)
                                    and length(territory_name) >= 8
                                  order by territory_id limit 1""", [month]).fetchone()
    return {"month": month.strftime("%Y-%m"), "labels": labels, "first": first,
            "accented": accented}


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def shots_dir(tmp_path: Path) -> Path:
    target = os.environ.get("OBSERVATOIRE_SCREENSHOTS")
    return Path(target) if target else tmp_path


# The tables of ranked rows (ranking, Top N, area and territory pages), measured as a reader
# sees them: every column shown, the score cell of the first row, rows' heights in lines.
TABLES_JS = """[...document.querySelectorAll('table.ranking, table.top-n, table.area, table.history')]
  .map(t => {
    const heads = [...t.tHead.rows[0].cells];
    const score = heads.findIndex(c => c.textContent.trim() === 'Score');
    const cell = t.tBodies[0].rows[0].cells[score].getBoundingClientRect();
    const rows = [...t.tBodies[0].rows].slice(0, 100);
    const line = parseFloat(getComputedStyle(t.tBodies[0].rows[0].cells[0]).lineHeight);
    return {kind: t.className, overflow: t.scrollWidth - t.parentElement.clientWidth,
            shown: heads.filter(c => c.offsetParent !== null).map(c => c.textContent.trim()),
            score_left: cell.left, score_right: cell.right, score_width: cell.width,
            lines: Math.max(...rows.map(r => r.getBoundingClientRect().height)) / line};
  })"""


def tables(browser: Browser, width: int, height: int, mobile: bool) -> list[dict]:
    browser.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                 deviceScaleFactor=1, mobile=mobile)
    return browser.eval(TABLES_JS)


def check_phone_layout(browser: Browser, name: str) -> None:
    """At 390 px, rank, territory (or month) and score are on screen without scrolling
    sideways, a long name takes two lines at most; at desktop width every column is shown."""
    desktop = tables(browser, *DESKTOP, mobile=False)
    phone = tables(browser, *PHONE, mobile=True)
    assert browser.eval("document.documentElement.scrollWidth") <= PHONE[0] + 1, name
    for wide, narrow in zip(desktop, phone, strict=True):
        assert "Score" in wide["shown"] and len(wide["shown"]) >= 6, (name, wide)
        assert narrow["overflow"] <= 1, (name, narrow)
        assert narrow["shown"][-1] == "Score" and narrow["score_width"] > 0, (name, narrow)
        assert 0 <= narrow["score_left"] and narrow["score_right"] <= PHONE[0], (name, narrow)
        assert any(h.startswith("Rang") for h in narrow["shown"]), (name, narrow)
        assert {"Territoire", "Mois"} & set(narrow["shown"]), (name, narrow)
        assert narrow["lines"] < 3, (name, narrow)        # two lines of text and padding
    # thumb-sized: the search box, and the month picker of a ranking page
    for control in ("#q", "select.month-select", "form.filters select"):
        box = browser.eval(f"(e => e && e.getBoundingClientRect().toJSON())"
                           f"(document.querySelector('{control}'))")
        assert box is None or box["height"] >= 44, (name, control, box)
    tables(browser, *DESKTOP, mobile=False)


def visit(browser: Browser, site: Path, page: str, name: str, tmp_path: Path) -> str:
    browser.events.clear()
    browser.call("Emulation.setDeviceMetricsOverride", width=DESKTOP[0], height=DESKTOP[1],
                 deviceScaleFactor=1, mobile=False)
    browser.open((site / page).as_uri())
    text = browser.eval("document.body.innerText")
    assert browser.eval("document.documentElement.lang") == "fr"
    assert "Données simulées (démo)" in text
    browser.screenshot(shots_dir(tmp_path) / f"site-{name}-desktop.png", *DESKTOP)
    browser.screenshot(shots_dir(tmp_path) / f"site-{name}-phone.png", *PHONE, mobile=True)
    check_phone_layout(browser, name)
    urls = browser.requested_urls()
    assert urls, "Network events were not recorded"
    outside = [u for u in urls if not u.startswith(site.as_uri() + "/")]
    assert outside == [], f"{name}: requests leaving the site folder"
    assert browser.console_errors() == [], name
    return text


def test_index_category_and_territory_pages(site, facts, browser, tmp_path):
    assert len(facts["labels"]) == 8
    text = visit(browser, site, "index.html", "index", tmp_path)
    for label in facts["labels"]:
        assert label in text
    tid, name, category = facts["first"]
    assert name in text
    assert "Meilleures publications" in text and "Alertes" in text

    text = visit(browser, site, f"classements/{facts['month']}/{category}.html", "categorie", tmp_path)
    assert name in text and "classement complet" in text
    # every ranked row is on the page, and a click on "Abonnés" sorts by followers
    rows = browser.eval("document.querySelectorAll('table.sortable tbody tr').length")
    with duckdb.connect(str(site.parent / "published" / "warehouse.duckdb"), read_only=True) as con:
        assert rows == con.execute("""select count(*) from marts.fct_monthly_rankings
                                      where strftime(month, '%Y-%m') = ? and category = ?""",
                                   [facts["month"], category]).fetchone()[0]
    browser.eval("[...document.querySelectorAll('table.sortable th button')]"
                 ".find(b => b.textContent.trim() === 'Abonnés').click()")
    followers = browser.eval("""[...document.querySelectorAll('table.sortable tbody tr')]
        .map(r => Number(r.cells[5].textContent.replace(/\\D/g, '')))""")
    assert followers == sorted(followers) and followers != []
    options = browser.eval("document.querySelectorAll('select.month-select option').length")
    assert options == len(list((site / "classements").iterdir()))

    text = visit(browser, site, f"territoires/{tid.replace(':', '-')}.html", "territoire", tmp_path)
    assert name in text and "Les 12 derniers mois" in text
    assert browser.eval("document.querySelectorAll('svg.chart polyline, svg.chart circle').length") >= 2
    handle = browser.eval("document.querySelector('p.lead').textContent")
    profile = browser.eval("document.querySelector('p.lead a[href^=\"https://www.instagram.com/\"]') !== null")
    assert profile != ("compte simulé" in handle)  # real handles link to their profile


@pytest.mark.parametrize("page", ["index.html", "methode.html"])
def test_search_finds_a_territory_with_or_without_accents(site, facts, browser, page):
    tid, name = facts["accented"]
    target = (site / "territoires" / f"{tid.replace(':', '-')}.html").resolve()
    browser.events.clear()
    browser.open((site / page).as_uri())
    for typed in (name, fold(name).upper(), fold(name)[: max(4, len(name) - 2)], tid.split(":")[1]):
        browser.type_into("#q", typed)
        hrefs = browser.eval("[...document.querySelectorAll('#search-results a')].map(a => a.href)")
        assert target.as_uri() in hrefs, typed
    # Enter does not submit the form (a listener of site.js: the CSP runs no inline onsubmit)
    here = browser.eval("location.href")
    browser.eval("document.querySelector('form.search').requestSubmit()")
    assert browser.eval("location.href") == here
    browser.eval(f"[...document.querySelectorAll('#search-results a')].find(a => a.href === '{target.as_uri()}').click()")
    browser.wait_for("Page.loadEventFired")
    assert browser.eval("document.querySelector('h1').textContent") == name
    assert browser.console_errors() == []
    assert all(u.startswith(site.as_uri() + "/") for u in browser.requested_urls())


def test_area_pages_and_the_ranking_filter_on_a_phone(site, facts, browser, tmp_path):
    """The Gers page and the zones page load without error; on a 390 px wide phone, a ranking
    page filtered by région then by département shows exactly the marts' rows of that area."""
    month = facts["month"]
    text = visit(browser, site, "departements/32.html", "departement", tmp_path)
    assert "Gers" in text and "Rang local" in text and "Occitanie" in text
    text = visit(browser, site, "zones.html", "zones", tmp_path)
    assert "Occitanie" in text and "Gers" in text
    with duckdb.connect(str(site.parent / "published" / "warehouse.duckdb"), read_only=True) as con:
        def count(where: str) -> int:
            return con.execute(f"""select count(*) from marts.fct_monthly_rankings
                where strftime(month, '%Y-%m') = ? and category = 'petite_ville' and {where}""",
                               [month]).fetchone()[0]
        total, occitanie, gers = count("true"), count("code_region = '76'"), count("code_departement = '32'")
    assert total > occitanie > gers > 0
    visit(browser, site, f"classements/{month}/petite_ville.html", "filtre", tmp_path)
    browser.call("Emulation.setDeviceMetricsOverride", width=PHONE[0], height=PHONE[1],
                 deviceScaleFactor=1, mobile=True)
    shown = ("[...document.querySelectorAll('table.sortable tbody tr')]"
             ".filter(r => r.offsetParent !== null).length")
    choose = ("(() => {{ const s = document.querySelector('form.filters select[data-attr={}]');"
              " s.value = '{}'; s.dispatchEvent(new Event('change')); }})()")
    assert browser.eval(shown) == total
    browser.eval(choose.format("r", "76"))
    assert browser.eval(shown) == occitanie
    # only Occitanie's départements are offered, then one of them narrows the table
    offered = browser.eval("[...document.querySelectorAll('select[data-attr=d] option')]"
                           ".filter(o => !o.hidden && o.value).map(o => o.value)")
    assert "32" in offered and "75" not in offered
    browser.eval(choose.format("d", "32"))
    assert browser.eval(shown) == gers
    assert browser.eval("document.querySelector('form.filters output').textContent") == \
        f"{gers} territoire{'s' if gers > 1 else ''} affiché{'s' if gers > 1 else ''}"
    assert browser.eval("location.hash") == "#r=76&d=32"
    assert browser.eval("document.documentElement.scrollWidth") <= PHONE[0] + 1
    browser.screenshot(shots_dir(tmp_path) / "site-filtre-gers-phone.png", *PHONE, mobile=True)
    browser.eval(choose.format("r", ""))
    browser.eval(choose.format("d", ""))
    assert browser.eval(shown) == total
    assert browser.console_errors() == []


def test_search_finds_a_departement_by_name_and_code(site, browser):
    browser.events.clear()
    browser.open((site / "index.html").as_uri())
    target = (site / "departements" / "32.html").resolve().as_uri()
    for typed in ("gers", "32"):
        browser.type_into("#q", typed)
        hrefs = browser.eval("[...document.querySelectorAll('#search-results a')].map(a => a.href)")
        assert target in hrefs, typed
    assert browser.console_errors() == []
