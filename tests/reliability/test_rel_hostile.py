"""Hostile data never reaches readers: a landing month written by an attacker, through
`observatoire run --source landing`, then every published file read as a reader's browser
or spreadsheet would.

The month's posts carry script, data and foreign permalinks beside genuine ones; the
accounts' names carry markup, quotes and formulas (one is 10 000 characters long); one
landing line names a handle made of markup; one account's error message is a formula with a
script in it. What is checked in every file of the exports and the site:
- no link or source whose scheme is `javascript:`, `vbscript:` or `data:` (the site's own
  pages included), and no trace of the hostile permalinks at all (the loader drops them);
- no absolute link to a host the observatory does not link to (Instagram only);
- no markup from the data unescaped in HTML or SVG;
- no CSV cell that a spreadsheet would read as a formula.
Account names are not published (territories are named from the reference data): they must
still go through the pipeline without harm.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pipeline_support import run_cli
from rel_helpers import dumps, media, query, snapshot, write

pytestmark = pytest.mark.slow

MONTH = "2021-07"
ACCOUNTS = {"gersledepartement": "departement:32", "landes.departement": "departement:40",
            "lotetgaronne": "departement:47", "gironde.departement": "departement:33",
            "ariege.departement": "departement:09"}
SCRIPT_NAME = '<script>alert("name")</script>'
ATTR_NAME = '"><img src=x onerror=alert(1)> l\'Gironde'
FORMULA_NAME = "=1+2"
LONG_NAME = "Landes " + "A" * 9_980 + "<b>fin</b>"
HOSTILE_PERMALINKS = ["javascript:alert(document.domain)", "JaVaScRiPt:alert(2)",
                      " javascript:alert(3)", "data:text/html,<script>alert(4)</script>",
                      "https://evil.example/p/phish/", "//evil.example/p/x/",
                      "https://www.instagram.com.evil.example/p/x/"]
HOSTILE_ERROR = "=cmd|' /C calc'!A0 <script>alert(5)</script>"
LINK_HOSTS = {"instagram.com", "www.instagram.com"}


def posts(handle: str, permalinks: list[str]) -> list[dict]:
    items = []
    for i, link in enumerate(permalinks):
        item = media(f"{handle[:4]}{i}", f"{MONTH}-{10 + i}T09:00:00+0000",
                     likes=100 + 10 * i, comments=i)
        items.append({**item, "permalink": link})
    return items


def hostile_month() -> list[str]:
    fetched = f"{MONTH}-31T20:00:00Z"
    good = "https://www.instagram.com/p/{}/"
    lines = [
        snapshot("gersledepartement", fetched, source="import", name=SCRIPT_NAME,
                 followers_count=15000, follows_count=100,
                 items=posts("gers", HOSTILE_PERMALINKS[:4] + [good.format("GersOK1")])),
        snapshot("landes.departement", fetched, source="import", name=LONG_NAME,
                 followers_count=20000, follows_count=400,
                 items=posts("land", HOSTILE_PERMALINKS[4:] + [good.format("LandesOK")])),
        snapshot("lotetgaronne", fetched, source="import", name=FORMULA_NAME,
                 followers_count=5000, follows_count=50,
                 items=posts("lot", [good.format("LotOK"), "@SUM(1)"])),
        snapshot("gironde.departement", fetched, source="import", name=ATTR_NAME,
                 followers_count=40000, follows_count=4000,
                 items=posts("giro", [good.format("GirOK"), "+33 6 00"])),
        snapshot("<b>x</b>", fetched, source="import", name="<i>bold</i>",
                 items=posts("bxb", ["javascript:alert(6)"])),
    ]
    failed = snapshot("ariege.departement", fetched, source="import", status="error")
    failed["business_discovery"] = None
    failed["error"] = {"code": 1, "message": HOSTILE_ERROR}
    return [dumps(line) for line in [*lines, failed]]


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("hostile")
    data = tmp / "data"
    registry = tmp / "accounts.csv"
    registry.write_text("handle,territory_id\n" + "".join(
        f"{h},{t}\n" for h, t in ACCOUNTS.items()), encoding="utf-8")
    write(data / "landing" / "instagram", MONTH, "import-hostile.ndjson", hostile_month())
    proc = run_cli(["run", "--source", "landing", "--from", MONTH, "--to", MONTH,
                    "--accounts", str(registry), "--data-dir", str(data)], data)
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = " ".join((proc.stdout + proc.stderr).split())
    assert "permalinks dropped 9" in said, said[-2000:]   # 7 hostile, "@SUM(1)", "+33 6 00"
    return data


def text_files(data: Path) -> list[Path]:
    files = [p for folder in ("exports", "site") for p in (data / folder).rglob("*")
             if p.is_file() and p.suffix in {".html", ".csv", ".json", ".svg", ".txt", ".js"}]
    assert len(files) > 20, files
    return files


def test_the_run_ranks_the_month_and_keeps_only_instagram_permalinks(published):
    warehouse = published / "published" / "warehouse.duckdb"
    assert query(warehouse, "select count(*) from marts.fct_monthly_rankings") == [(4,)]
    links = {r[0] for r in query(warehouse, "select permalink from raw.media")}
    assert links - {None} == {f"https://www.instagram.com/p/{c}/"
                              for c in ("GersOK1", "LandesOK", "LotOK", "GirOK")}


OWN_IMAGE = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]+$")
URL_ATTR = re.compile(r"""(?:href|src|action|formaction|xlink:href|poster|srcset)\s*=\s*
                          (?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE | re.VERBOSE)


def test_no_script_data_or_foreign_link_in_any_published_file(published):
    for path in text_files(published):
        text = path.read_text(encoding="utf-8-sig", errors="replace")
        lowered = text.lower()
        for trace in ("javascript:", "vbscript:", "evil.example", "alert(6)"):
            assert trace not in lowered, f"{path}: {trace}"
        for match in URL_ATTR.finditer(text):
            url = next(g for g in match.groups() if g is not None).strip()
            scheme = urlsplit(url).scheme.lower()
            if match.group(0).lower().startswith("src") and OWN_IMAGE.match(url):
                continue                  # the report's own charts, drawn by the observatory
            assert scheme in ("", "https"), f"{path}: {match.group(0)[:120]}"
            if url.startswith("//") or scheme:
                assert urlsplit(url).hostname in LINK_HOSTS, f"{path}: {url}"


def test_no_markup_from_the_data_reaches_a_page_unescaped(published):
    pages = [p for p in text_files(published) if p.suffix in (".html", ".svg")]
    for path in pages:
        text = path.read_text(encoding="utf-8")
        for raw in ("<script>alert", "<img src=x", "<b>fin</b>", "<b>x</b>", "<i>bold</i>"):
            assert raw not in text, f"{path}: {raw} unescaped"
        # the API's own error message stays in the warehouse: readers get its code only
        assert "alert(5)" not in text, path
    home = (published / "site" / "index.html").read_text("utf-8")      # the month's alerts
    assert "erreur de l&#39;API (code d&#39;erreur 1)" in home


FORMULA = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"-?\d[\d\s\u202f\u00a0]*(?:[.,]\d+)?(?:\s?%)?")


def cells(path: Path):
    text = path.read_text(encoding="utf-8-sig")
    dialect = csv.Sniffer().sniff(text.splitlines()[0], delimiters=";,")
    yield from (cell for row in csv.reader(io.StringIO(text), dialect) for cell in row)


def test_no_csv_cell_reads_as_a_formula(published):
    files = [p for p in text_files(published) if p.suffix == ".csv"]
    assert files
    details = []
    for path in files:
        for cell in cells(path):
            assert "/C calc" not in cell, f"{path}: the API's error message is published"
            details += [cell] if "code d'erreur 1)" in cell else []
            if cell.startswith(FORMULA) and not NUMBER.fullmatch(cell) and cell != "-":
                pytest.fail(f"{path}: formula cell {cell[:80]!r}")
    assert details                       # the Ariège's alert is published, in French
    warehouse = published / "published" / "warehouse.duckdb"
    assert query(warehouse, "select count(*) from marts.account_alerts where detail like ?",
                 [f"%{HOSTILE_ERROR}%"]) == [(1,)]   # kept as text for analysts
