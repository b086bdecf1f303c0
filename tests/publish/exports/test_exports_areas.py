"""The exports of the demo run: every file flagged demo, the département and région files
against the marts, and `observatoire export --departement / --region` (the local ranks
themselves are checked against the national ranking in tests/dbt/test_local_ranks.py)."""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest
from pipeline_support import E2E_TO, run_cli

pytestmark = pytest.mark.slow


def query(demo_run: Path, sql: str, params: list | None = None) -> list[dict]:
    with duckdb.connect(str(demo_run / "published" / "warehouse.duckdb"), read_only=True) as con:
        cur = con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]


def read_area_csv(path: Path) -> list[dict[str, str]]:
    text = path.read_bytes().decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text), delimiter=";"))


def test_every_csv_of_a_demo_month_says_demo(demo_run):
    """Each row of each CSV (national, alerts, départements/, régions/) says `démo`."""
    paths = sorted((demo_run / "exports" / E2E_TO).rglob("*.csv"))
    assert len(paths) > 100
    for path in paths:
        rows = read_area_csv(path)
        assert rows and {r["données"] for r in rows} == {"démo"}, path.name


@pytest.mark.parametrize("kind", ["departement", "region"])
def test_area_files_hold_the_marts_rows(demo_run, kind):
    folder = demo_run / "exports" / E2E_TO / f"{kind}s"
    files = sorted(folder.glob("*.csv"))
    want = query(demo_run, f"""select code_{kind} as area, c.label, rank, in_top_n, rank_in_{kind} as local,
                                      territory_name, handle, followers
                               from marts.fct_monthly_rankings join marts.dim_categories c using (category)
                               where strftime(month, '%Y-%m') = ? and code_{kind} is not null
                               order by area, c.sort_order, rank""", [E2E_TO])
    by_area: dict[str, list[tuple]] = defaultdict(list)
    for w in want:
        by_area[w["area"]].append((w["label"], str(w["rank"]), "oui" if w["in_top_n"] else "non",
                                   "" if w["local"] is None else str(w["local"]),
                                   w["territory_name"], w["handle"], str(w["followers"])))
    assert [f.stem for f in files] == sorted(by_area)
    assert len(files) >= (90 if kind == "departement" else 13)
    for f in files:
        got = [(r["catégorie"], r["rang national"], r["Top N national"], r["rang local"],
                r["territoire"], r["compte"], r["abonnés"]) for r in read_area_csv(f)]
        assert got == by_area[f.stem], f.name
        assert {r["données"] for r in read_area_csv(f)} == {"démo"}, f.name


def test_cli_writes_one_area(demo_run, tmp_path):
    data = tmp_path / "data"
    (data / "published").mkdir(parents=True)
    (data / "published" / "warehouse.duckdb").write_bytes(
        (demo_run / "published" / "warehouse.duckdb").read_bytes())
    proc = run_cli(["export", "--month", E2E_TO, "--departement", "32", "--data-dir", str(data)], data)
    assert proc.returncode == 0, proc.stderr
    month_dir = data / "exports" / E2E_TO
    assert [p.relative_to(month_dir).as_posix() for p in month_dir.rglob("*.csv")] == ["departements/32.csv"]
    assert (month_dir / "departements" / "32.csv").read_bytes() == \
        (demo_run / "exports" / E2E_TO / "departements" / "32.csv").read_bytes()
    proc = run_cli(["export", "--month", E2E_TO, "--region", "99", "--data-dir", str(data)], data)
    assert proc.returncode != 0
    assert "région '99'" in proc.stderr + proc.stdout and "76" in proc.stderr + proc.stdout
