"""CSV exports for journalists: dialects, headers, formats, guards, atomicity."""
from __future__ import annotations

import csv
import datetime as dt
import errno
import io
import os
import re
from pathlib import Path

import duckdb
import pytest

from dagster_project.publish.exports import csv_export, export_month
from dagster_project.publish.formatting import evolution, neutralise

CATEGORIES = ["region", "departement", "metropole", "communaute_agglomeration",
              "communaute_communes", "grande_ville", "ville_moyenne", "petite_ville"]
HEADERS = ["rang", "évolution", "territoire", "code", "département", "région", "compte", "abonnés",
           "croissance abonnés", "taux d'engagement (%)", "publications/jour", "portée (%)",
           "score", "données"]
ALERT_HEADERS = ["territoire", "code", "catégorie", "compte", "alerte", "détail",
                 "dernier mois classé", "dernier rang", "données"]
DIALECTS = {"excel-fr": (";", ",", True), "rfc4180": (",", ".", False)}
TEXT_COLUMNS = ["évolution", "territoire", "code", "département", "région", "compte", "données"]
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def read_csv(path: Path, dialect: str) -> tuple[bytes, list[dict[str, str]], list[str]]:
    """Parse a file the way a consumer would: csv module in the dialect's separator."""
    sep, _dec, bom = DIALECTS[dialect]
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") is bom, f"{path.name}: BOM presence should be {bom}"
    text = raw.decode("utf-8-sig" if bom else "utf-8")
    assert "\ufeff" not in text
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=sep))
    header, body = rows[0], rows[1:]
    return raw, [dict(zip(header, r, strict=True)) for r in body], header


def db_rows(warehouse: Path, month: dt.date, sql: str, params: list | None = None) -> list:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, [month, *(params or [])]).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module", params=list(DIALECTS))
def exported(request, warehouse, july, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"exp-{request.param}")
    paths = export_month(warehouse, july, out, dialect=request.param)
    return request.param, out / "2021-07", paths


# ---------------------------------------------------------------- structure

def test_files_written(exported, warehouse, july):
    _dialect, folder, paths = exported
    names = [p.name for p in paths if p.parent == folder]
    assert names == [f"{c}.csv" for c in CATEGORIES] + ["alertes.csv", "LISEZMOI.txt"]
    areas = {(p.parent.name, p.stem) for p in paths if p.parent != folder}
    expected = {("departements", c) for (c,) in db_rows(warehouse, july, """select distinct
                code_departement from marts.fct_monthly_rankings where month = ?
                and code_departement is not null""")}
    expected |= {("regions", c) for (c,) in db_rows(warehouse, july, """select distinct
                 code_region from marts.fct_monthly_rankings where month = ?
                 and code_region is not null""")}
    assert areas == expected and len(paths) == len(names) + len(areas)
    assert all(p.is_file() and p.parent.parent in (folder, folder.parent) for p in paths)
    assert sorted(x.name for x in folder.iterdir()) == sorted(names + ["departements", "regions"])
    assert not [x for x in folder.parent.iterdir() if x.name != "2021-07"], "temp dir left"


def test_unknown_dialect_is_rejected(warehouse, july, tmp_path):
    with pytest.raises(ValueError) as err:
        export_month(warehouse, july, tmp_path, dialect="excel")
    assert "excel-fr" in str(err.value) and "rfc4180" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_month_without_data_is_an_error(warehouse, tmp_path):
    with pytest.raises(ValueError, match="2019-01"):
        export_month(warehouse, dt.date(2019, 1, 1), tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("category", CATEGORIES)
def test_category_csv_format(exported, warehouse, july, category):
    dialect, folder, _ = exported
    _sep, dec, _bom = DIALECTS[dialect]
    raw, rows, header = read_csv(folder / f"{category}.csv", dialect)
    assert header == HEADERS
    assert raw.count(b"\r\n") == raw.count(b"\n") == len(rows) + 1, "CRLF line endings"

    (top_n, ranked), = db_rows(warehouse, july, """
        select c.top_n, count(r.rank) from marts.dim_categories c
        left join marts.fct_monthly_rankings r on r.category = c.category and r.month = ?
        where c.category = ? group by c.top_n""", [category])
    assert len(rows) == min(top_n, ranked) > 0
    assert [int(r["rang"]) for r in rows] == list(range(1, len(rows) + 1))

    other = "." if dec == "," else ","
    for r in rows:
        assert re.fullmatch(r"\d+", r["abonnés"])
        assert re.fullmatch(r"-?\d*", r["croissance abonnés"])
        for col, decimals in (("taux d'engagement (%)", 2), ("publications/jour", 2),
                              ("portée (%)", 3), ("score", 2)):
            assert re.fullmatch(rf"\d+{re.escape(dec)}\d{{{decimals}}}", r[col]), (col, r[col])
            assert other not in r[col]
        assert r["données"] in ("réelles", "démo")
        assert re.fullmatch(r"▲ \d+|▼ \d+|stable|nouveau", r["évolution"]), r["évolution"]
        assert not r["compte"].startswith(("@", "'@")), "handles are written without @"


def test_values_match_the_warehouse(exported, warehouse, july):
    dialect, folder, _ = exported
    dec = DIALECTS[dialect][1]
    _raw, rows, _h = read_csv(folder / "departement.csv", dialect)
    expected = db_rows(warehouse, july, """
        select rank, territory_name, handle, followers, followers_growth, engagement_rate,
               posts_per_day, reach, score
        from marts.fct_monthly_rankings where month = ? and category = 'departement'
        order by rank""")
    assert len(rows) == len(expected)
    for r, (rank, name, handle, fol, growth, er, ppd, reach, score) in zip(rows, expected,
                                                                              strict=True):
        assert int(r["rang"]) == rank
        assert r["territoire"] == name
        assert r["compte"] == handle
        assert int(r["abonnés"]) == fol
        assert r["croissance abonnés"] == ("" if growth is None else str(growth))
        num = lambda s: float(s.replace(dec, "."))
        assert num(r["taux d'engagement (%)"]) == pytest.approx(er * 100, abs=0.005)
        assert num(r["publications/jour"]) == pytest.approx(ppd, abs=0.005)
        assert num(r["portée (%)"]) == pytest.approx(reach * 100, abs=0.0005)
        assert num(r["score"]) == pytest.approx(score, abs=0.005)
    by_code = {r["code"]: r for r in rows}
    assert by_code["2A"]["territoire"] == "Corse-du-Sud"
    assert by_code["09"]["territoire"] == "Ariège"            # code keeps its leading zero
    assert by_code["75"]["croissance abonnés"] == "-12"       # a number, not neutralised


def test_top_n_cut_for_grandes_villes(exported):
    dialect, folder, _ = exported
    _raw, rows, _h = read_csv(folder / "grande_ville.csv", dialect)
    assert len(rows) == 20                                     # 24 ranked, Top 20 exported


def test_tie_broken_by_followers_then_territory_id(exported):
    dialect, folder, _ = exported
    _raw, rows, _h = read_csv(folder / "departement.csv", dialect)
    eure = next(r for r in rows if r["territoire"] == "Eure")
    marne = next(r for r in rows if r["territoire"] == "Haute-Marne")
    assert eure["score"] == marne["score"] and eure["abonnés"] == marne["abonnés"]
    assert int(marne["rang"]) == int(eure["rang"]) + 1         # departement:27 < departement:52


def test_demo_flag(exported):
    dialect, folder, _ = exported
    for category in CATEGORIES:
        _raw, rows, _h = read_csv(folder / f"{category}.csv", dialect)
        flags = {r["données"] for r in rows}
        assert flags == ({"démo"} if category == "petite_ville" else {"réelles"}), category


# ---------------------------------------------------------------- formula guard & wording

def test_formula_injection_is_neutralised(exported):
    dialect, folder, _ = exported
    names = {}
    for category in CATEGORIES:
        _raw, rows, _h = read_csv(folder / f"{category}.csv", dialect)
        for r in rows:
            names[r["territoire"]] = r
            for col in TEXT_COLUMNS:
                assert not r[col].startswith(DANGEROUS), (category, col, r[col])
    assert "'=HYPERLINK(\"x\")" in names
    assert "'+33 Ville" in names
    assert "'-Tiret" in names
    _raw, alerts, _h = read_csv(folder / "alertes.csv", dialect)
    for a in alerts:
        for col in ALERT_HEADERS:
            assert not a[col].startswith(DANGEROUS), (col, a[col])


@pytest.mark.parametrize("text, expected", [
    ('=HYPERLINK("x")', '\'=HYPERLINK("x")'), ("+33 Ville", "'+33 Ville"),
    ("-Tiret", "'-Tiret"), ("@handle", "'@handle"), ("\tcmd", "'\tcmd"), ("\rcmd", "'\rcmd"),
    ("=", "'="), ("Gers", "Gers"), ("Île-de-France", "Île-de-France"), ("", ""), (None, ""),
])
def test_neutralise(text, expected):
    assert neutralise(text) == expected


@pytest.mark.parametrize("change, new, expected", [
    (3, False, "▲ 3"), (-2, False, "▼ 2"), (0, False, "stable"), (None, True, "nouveau"),
    (None, False, ""),
])
def test_evolution_wording(change, new, expected):
    assert evolution(change, new) == expected


def test_evolution_column_matches_rank_change(exported, warehouse, july):
    dialect, folder, _ = exported
    _raw, rows, _h = read_csv(folder / "departement.csv", dialect)
    db = {name: (chg, new) for name, chg, new in db_rows(warehouse, july, """
        select territory_name, rank_change, is_new_entry from marts.fct_monthly_rankings
        where month = ? and category = 'departement'""")}
    for r in rows:
        chg, new = db[r["territoire"]]
        want = "nouveau" if new else (f"▲ {chg}" if chg > 0 else
                                      f"▼ {-chg}" if chg < 0 else "stable")
        assert r["évolution"] == want
    assert next(r for r in rows if r["territoire"] == "Charente-Maritime")["évolution"] \
        == "nouveau"


def test_first_month_is_all_new(warehouse, june, tmp_path):
    export_month(warehouse, june, tmp_path)
    _raw, rows, _h = read_csv(tmp_path / "2021-06" / "departement.csv", "excel-fr")
    assert {r["évolution"] for r in rows} == {"nouveau"}
    assert {r["croissance abonnés"] for r in rows} == {""}


# ---------------------------------------------------------------- alerts & LISEZMOI

def test_alerts_csv(exported):
    dialect, folder, _ = exported
    _raw, rows, header = read_csv(folder / "alertes.csv", dialect)
    assert header == ALERT_HEADERS
    by_name = {r["territoire"]: r for r in rows}
    assert set(by_name) == {"CC de la Ténarèze", "Metz Métropole", "CC Sans Historique"}
    ten = by_name["CC de la Ténarèze"]
    assert ten["alerte"] == "compte indisponible"
    assert ten["catégorie"] == "Communautés de communes"
    assert ten["code"] == "243200508" and ten["compte"] == "latenareze"
    assert ten["dernier mois classé"] == "2021-06" and re.fullmatch(r"\d+", ten["dernier rang"])
    assert by_name["Metz Métropole"]["alerte"] == "aucun relevé"
    never = by_name["CC Sans Historique"]
    assert never["dernier mois classé"] == "" and never["dernier rang"] == ""
    assert {r["données"] for r in rows} == {"réelles"}


def test_lisezmoi_demo(exported):
    dialect, folder, _ = exported
    raw = (folder / "LISEZMOI.txt").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") is DIALECTS[dialect][2]
    text = raw.decode("utf-8-sig")
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")
    assert "DONNÉES SIMULÉES (démo) : ces chiffres ne décrivent pas les comptes réels" in text
    assert text.index("DONNÉES SIMULÉES") < text.index("MÉTHODE")   # loud: at the top
    assert "Petites villes" in text
    for needle in ("poids 5", "poids 4", "poids 3", "poids 2", "poids 1", "percent_rank",
                   "abonnés passe devant", "business_discovery", "INSEE", "2026",
                   "@etalab/decoupage-administratif 6.0.0", "Licence Ouverte 2.0",
                   "30/07/2021 18:00 UTC", "31/07/2021 22:00 UTC", "Export réalisé le",
                   "définitif", "sans « @ »", dialect):
        assert needle in text, needle
    assert "PROVISOIRE" not in text


def test_lisezmoi_real_and_provisional(real_provisional_warehouse, july, tmp_path):
    export_month(real_provisional_warehouse, july, tmp_path)
    text = (tmp_path / "2021-07" / "LISEZMOI.txt").read_text(encoding="utf-8-sig")
    assert "DONNÉES SIMULÉES" not in text
    assert "CLASSEMENT PROVISOIRE" in text
    _raw, rows, _h = read_csv(tmp_path / "2021-07" / "petite_ville.csv", "excel-fr")
    assert {r["données"] for r in rows} == {"réelles"}


# ---------------------------------------------------------------- atomic re-export

def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a month's folder (its départements/ and régions/ too), by path."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_reexport_replaces_the_month(warehouse, july, tmp_path):
    export_month(warehouse, july, tmp_path, dialect="excel-fr")
    (tmp_path / "2021-07" / "stale.csv").write_text("old")
    first = snapshot(tmp_path / "2021-07")
    export_month(warehouse, july, tmp_path, dialect="rfc4180")
    second = snapshot(tmp_path / "2021-07")
    assert "stale.csv" not in second
    assert set(second) == set(first) - {"stale.csv"}
    assert second["departement.csv"] != first["departement.csv"]
    assert second["departement.csv"].startswith(b"rang,")
    assert [p.name for p in tmp_path.iterdir()] == ["2021-07"]


@pytest.mark.parametrize("fail_at", [1, 5, 9])
def test_failing_write_keeps_the_old_export(warehouse, july, tmp_path, monkeypatch, fail_at):
    export_month(warehouse, july, tmp_path)
    before = snapshot(tmp_path / "2021-07")
    real = csv_export._write_file
    calls = {"n": 0}

    def flaky(path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == fail_at:
            path.write_bytes(b"partial")              # a half-written file, then disk full
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(csv_export, "_write_file", flaky)
    with pytest.raises(OSError, match="No space left"):
        export_month(warehouse, july, tmp_path, dialect="rfc4180")
    assert snapshot(tmp_path / "2021-07") == before
    assert [p.name for p in tmp_path.iterdir()] == ["2021-07"], "temp dir left behind"


def test_failing_query_keeps_the_old_export(warehouse, july, tmp_path, monkeypatch):
    """DuckDB fails while formatting the files (out of memory, a broken warehouse): the
    month's folder is untouched and nothing is left behind."""
    export_month(warehouse, july, tmp_path)
    before = snapshot(tmp_path / "2021-07")

    def failing(con, months, spec):
        con.execute("select error('Out of Memory Error: could not allocate block')")

    monkeypatch.setattr(csv_export, "read_files", failing)
    with pytest.raises(duckdb.Error, match="Out of Memory"):
        export_month(warehouse, july, tmp_path, dialect="rfc4180")
    assert snapshot(tmp_path / "2021-07") == before
    assert [p.name for p in tmp_path.iterdir()] == ["2021-07"]


def test_failing_readme_keeps_the_old_export(warehouse, july, tmp_path, monkeypatch):
    export_month(warehouse, july, tmp_path)
    before = snapshot(tmp_path / "2021-07")

    def boom(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(csv_export, "readme_text", boom)
    with pytest.raises(OSError):
        export_month(warehouse, july, tmp_path, dialect="rfc4180")
    assert snapshot(tmp_path / "2021-07") == before
    assert [p.name for p in tmp_path.iterdir()] == ["2021-07"]


def test_failing_swap_restores_the_old_export(warehouse, july, tmp_path, monkeypatch):
    export_month(warehouse, july, tmp_path)
    before = snapshot(tmp_path / "2021-07")
    real_rename = os.rename

    def rename(src, dst):
        if ".tmp-" in Path(src).name:               # new folder → final: fails
            raise OSError(errno.EIO, "I/O error")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="I/O error"):
        export_month(warehouse, july, tmp_path, dialect="rfc4180")
    monkeypatch.undo()
    assert snapshot(tmp_path / "2021-07") == before
    assert [p.name for p in tmp_path.iterdir()] == ["2021-07"]


def test_export_reads_a_warehouse_held_by_a_reader(warehouse, july, tmp_path):
    """Read-only connections coexist: an analyst's open session does not block exports."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        paths = export_month(warehouse, july, tmp_path)
    finally:
        con.close()
    assert len([p for p in paths if p.parent.name == "2021-07"]) == 10


def test_concurrent_exports_of_one_month(warehouse, july, tmp_path):
    """Two runs exporting the same month at once: one complete export wins, nothing left over."""
    from concurrent.futures import ThreadPoolExecutor

    dialects = ["excel-fr", "rfc4180"] * 3
    with ThreadPoolExecutor(max_workers=len(dialects)) as pool:
        list(pool.map(lambda d: export_month(warehouse, july, tmp_path, dialect=d), dialects))
    assert [p.name for p in tmp_path.iterdir()] == ["2021-07"]
    files = snapshot(tmp_path / "2021-07")
    assert len([name for name in files if "/" not in name]) == 10
    boms = {name: data.startswith(b"\xef\xbb\xbf") for name, data in files.items()}
    assert len(set(boms.values())) == 1, "files from two different exports were mixed"


# ---------------------------------------------------------------- départements and régions

AREA_HEADERS = ["catégorie", "rang national", "Top N national", "rang local",
                "évolution (rang local)", "territoire", "code", "département", "compte",
                "abonnés", "croissance abonnés", "taux d'engagement (%)", "publications/jour",
                "portée (%)", "score", "données"]


@pytest.mark.parametrize("kind", ["departement", "region"])
def test_area_files_hold_the_marts_rows(exported, warehouse, july, kind):
    """Every file of the month: exactly the area's ranked territories (all categories, in
    category order then national rank), with the marts' national and local ranks."""
    dialect, folder, _ = exported
    files = sorted((folder / f"{kind}s").iterdir())
    assert files
    for path in files:
        _raw, rows, header = read_csv(path, dialect)
        assert header == AREA_HEADERS
        expected = db_rows(warehouse, july, f"""
            select c.label, r.rank, r.in_top_n, r.rank_in_{kind}, r.rank_in_{kind}_change,
                   r.territory_name, r.handle, r.score, r.is_demo
            from marts.fct_monthly_rankings r join marts.dim_categories c using (category)
            where r.month = ? and r.code_{kind} = ? order by c.sort_order, r.rank""", [path.stem])
        assert len(rows) == len(expected) > 0, path.name
        for row, (label, rank, top, local, change, name, handle, score, demo) in zip(
                rows, expected, strict=True):
            assert (row["catégorie"], int(row["rang national"]), row["Top N national"],
                    row["territoire"], row["compte"], row["données"]) == (
                label, rank, "oui" if top else "non", neutralise(name), handle,
                "démo" if demo else "réelles")
            assert row["rang local"] == ("" if local is None else str(local))
            assert row["évolution (rang local)"] == ("" if local is None
                                                     else evolution(change, change is None))
            assert float(row["score"].replace(DIALECTS[dialect][1], ".")) == pytest.approx(
                score, abs=0.005)


def test_category_csv_names_the_departement_and_region(exported, warehouse, july):
    dialect, folder, _ = exported
    _raw, rows, _h = read_csv(folder / "petite_ville.csv", dialect)
    expected = db_rows(warehouse, july, """select departement_name, region_name
        from marts.fct_monthly_rankings where month = ? and category = 'petite_ville'
        and in_top_n order by rank""")
    assert [(r["département"], r["région"]) for r in rows] == [
        (d or "", g or "") for d, g in expected]
    assert any(r["département"] and r["région"] for r in rows)
    _raw, regions, _h = read_csv(folder / "region.csv", dialect)
    assert all(r["département"] == "" and r["région"] == r["territoire"] for r in regions)


def test_export_one_area(warehouse, july, tmp_path):
    path = csv_export.export_area(warehouse, july, tmp_path, "departement", "32")
    assert path == tmp_path / "2021-07" / "departements" / "32.csv"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["2021-07", "32.csv", "departements"]
    whole = tmp_path / "whole"
    export_month(warehouse, july, whole)
    assert path.read_bytes() == (whole / "2021-07" / "departements" / "32.csv").read_bytes()
    with pytest.raises(ValueError, match=r"région '99' .*2021-07.*76"):
        csv_export.export_area(warehouse, july, tmp_path, "region", "99")
    assert not (tmp_path / "2021-07" / "regions").exists()
