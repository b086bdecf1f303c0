"""The CSVs open in a spreadsheet: LibreOffice (headless) converts them to .xlsx, read back.

The excel-fr files are imported the way a French LibreOffice does on double-click
(separator `;`, UTF-8, French locale so `7,96` is a number) and with formula evaluation
ON (worst case): accents survive, numbers are numbers, no cell becomes a formula.
"""
from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from dagster_project.publish.exports import export_month

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
pytestmark = pytest.mark.skipif(
    SOFFICE is None,
    reason="LibreOffice (soffice) is not installed: apt-get install -y libreoffice-calc")

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
# CSV filter options: separator, text delimiter, charset (76 = UTF-8), first line,
# column formats, language (1036 = fr-FR, 1033 = en-US), quoted as text, detect special
# numbers, (export-only ×4), evaluate formulas.
FILTERS = {
    "excel-fr": "CSV:59,34,76,1,,1036,false,true,false,false,false,-1,true",
    "rfc4180": "CSV:44,34,76,1,,1033,false,true,false,false,false,-1,true",
}
FILES = ["departement.csv", "ville_moyenne.csv", "petite_ville.csv", "alertes.csv"]


def convert(csvs: list[Path], infilter: str, outdir: Path, profile: Path) -> None:
    cmd = [SOFFICE, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore",
           f"--infilter={infilter}", "--convert-to", "xlsx", "--outdir", str(outdir),
           *map(str, csvs)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for c in csvs:
        assert (outdir / (c.stem + ".xlsx")).is_file(), proc.stdout + proc.stderr


def read_xlsx(path: Path) -> list[list[tuple[str, object]]]:
    """Rows of (type, value) from the first sheet: ('n', float) / ('s', str) / ('f', …)."""
    with zipfile.ZipFile(path) as z:
        strings = []
        if "xl/sharedStrings.xml" in z.namelist():
            for si in ET.fromstring(z.read("xl/sharedStrings.xml")).findall("m:si", NS):
                strings.append("".join(t.text or "" for t in si.iter(f"{{{NS['m']}}}t")))
        sheet = ET.fromstring(z.read("xl/worksheets/sheet1.xml"))
    rows = []
    for row in sheet.find("m:sheetData", NS).findall("m:row", NS):
        cells: dict[int, tuple[str, object]] = {}    # empty cells are absent from the XML
        for c in row.findall("m:c", NS):
            col = column_index(c.get("r"))
            v, t = c.find("m:v", NS), c.get("t", "n")
            if c.find("m:f", NS) is not None:
                cells[col] = ("f", c.find("m:f", NS).text)
            elif v is None:
                cells[col] = ("empty", None)
            elif t == "s":
                cells[col] = ("s", strings[int(v.text)])
            elif t in ("str", "inlineStr"):
                cells[col] = ("s", v.text)
            else:
                cells[col] = ("n", float(v.text))
        width = max(cells, default=-1) + 1
        rows.append([cells.get(i, ("empty", None)) for i in range(width)])
    return rows


def column_index(ref: str) -> int:
    """'A1' → 0, 'L7' → 11."""
    n = 0
    for ch in ref:
        if not ch.isalpha():
            break
        n = n * 26 + ord(ch.upper()) - 64
    return n - 1


@pytest.fixture(scope="module", params=list(FILTERS))
def sheets(request, warehouse, july, tmp_path_factory):
    dialect = request.param
    base = tmp_path_factory.mktemp(f"office-{dialect}")
    export_month(warehouse, july, base / "exports", dialect=dialect)
    month = base / "exports" / "2021-07"
    convert([month / f for f in FILES], FILTERS[dialect], base / "xlsx", base / "profile")
    return dialect, {f: read_xlsx(base / "xlsx" / (Path(f).stem + ".xlsx")) for f in FILES}


def test_headers_and_accents_survive(sheets):
    _dialect, books = sheets
    header = [v for _t, v in books["departement.csv"][0]]
    assert header == ["rang", "évolution", "territoire", "code", "département", "région",
                      "compte", "abonnés",
                      "croissance abonnés", "taux d'engagement (%)", "publications/jour",
                      "portée (%)", "score", "données"]
    names = {row[2][1] for row in books["departement.csv"][1:]}
    assert {"Ariège", "Ardèche", "Isère", "Corse-du-Sud"} <= names
    moves = {row[1][1] for row in books["departement.csv"][1:]}
    assert "nouveau" in moves and any(m.startswith("▲ ") for m in moves)
    assert any(m.startswith("▼ ") for m in moves)
    alerts = books["alertes.csv"]
    assert any(r[0][1] == "CC de la Ténarèze" for r in alerts[1:])
    assert {r[-1][1] for r in books["petite_ville.csv"][1:]} == {"démo"}


def test_numbers_are_numbers(sheets, warehouse, july):
    _dialect, books = sheets
    rows = books["departement.csv"][1:]
    for row in rows:
        for col in (0, 7, 9, 10, 11, 12):        # rang, abonnés, engagement, ppd, portée, score
            assert row[col][0] == "n", (col, row[col])
    gers = next(r for r in rows if r[2][1] == "Gers")
    import duckdb
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        score, er, fol = con.execute(
            """select score, engagement_rate, followers from marts.fct_monthly_rankings
               where month = ? and territory_id = 'departement:32'""", [july]).fetchone()
    finally:
        con.close()
    assert gers[12][1] == pytest.approx(round(score, 2))
    assert gers[9][1] == pytest.approx(round(er * 100, 2))
    assert gers[7][1] == fol
    assert (gers[4][1], gers[5][1]) == ("Gers", "Occitanie")
    paris = next(r for r in rows if r[2][1] == "Paris")
    assert paris[8] == ("n", -12.0)                  # negative growth stays a number


def test_no_cell_becomes_a_formula(sheets):
    _dialect, books = sheets
    for name, rows in books.items():
        for row in rows:
            assert all(t != "f" for t, _v in row), (name, row)
    texts = {row[2][1] for row in books["ville_moyenne.csv"][1:]}
    assert "'=HYPERLINK(\"x\")" in texts
    assert "'+33 Ville" in {row[2][1] for row in books["petite_ville.csv"][1:]}
