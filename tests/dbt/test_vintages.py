"""History-true territories: one reference vintage per COG year, each month ranked with its own."""
from __future__ import annotations

import importlib.util
import shutil
from collections import Counter

import duckdb
import pytest
from pipeline_support import E2E_FROM, ROOT, run_cli

from dagster_project.registry.territories import territory_ids, territory_names, vintage_dirs

SEEDS = ROOT / "seeds"


def _build_reference():
    spec = importlib.util.spec_from_file_location("build_reference", SEEDS / "build_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def q(path, sql, params=None):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_every_vintage_is_committed():
    build = _build_reference()
    assert [v for v, *_ in build.VINTAGES] == list(range(2019, 2027))
    assert [v for v, _ in vintage_dirs(SEEDS)] == [*range(2019, 2026), None]
    for _, folder in vintage_dirs(SEEDS):
        assert {p.name for p in folder.glob("*.csv")} >= {
            "regions.csv", "departements.csv", "epci.csv", "communes.csv"}


def test_registry_knows_every_vintage_and_names_from_the_latest():
    ids = territory_ids()
    # Béon (01039) merged into a commune nouvelle after COG 2019: gone from the current files.
    assert "commune:01039" in ids
    assert "01039" not in {r.split(",")[0] for r in (SEEDS / "communes.csv").read_text().splitlines()}
    names = territory_names()
    assert names["commune:01039"] == "Béon"
    # A name that changed is the one of the latest vintage.
    assert names["epci:200000172"] == "CC Faucigny - Glières"


@pytest.mark.slow
def test_category_counts_per_vintage_match_the_package(demo_run):
    """dim_territories (dbt, from the committed CSV) counts = the package JSON's, recomputed."""
    build = _build_reference()
    wh = demo_run / "published" / "warehouse.duckdb"
    got = q(wh, "select vintage, category, count(*) from marts.dim_territories group by all")
    by_vintage: dict[int, Counter] = {}
    for vintage, category, n in got:
        by_vintage.setdefault(vintage, Counter())[category] = n
    for vintage, version, integrity in build.VINTAGES:
        raw = build.fetch_package_data(["regions", "departements", "communes", "epci"],
                                       version, integrity)
        tables = build.build_tables(raw, mixed_years=vintage == build.MIXED_VINTAGE)
        assert dict(by_vintage[vintage]) == build.category_counts(tables), vintage


@pytest.mark.slow
def test_each_month_uses_the_vintage_in_force(demo_run):
    wh = demo_run / "published" / "warehouse.duckdb"
    in_force = q(wh, """select m, list(distinct vintage) from
        (values (date '2017-10-01'), (date '2018-12-01'), (date '2019-01-01'), (date '2020-12-01'),
                (date '2021-01-01'), (date '2026-10-01')) v(m)
        join marts.dim_territories t on m between t.valid_from and coalesce(t.valid_to, date '9999-12-01')
        group by m order by m""")
    assert [(str(m), v) for m, v in in_force] == [
        ("2017-10-01", [2019]), ("2018-12-01", [2019]), ("2019-01-01", [2019]),
        ("2020-12-01", [2020]), ("2021-01-01", [2021]), ("2026-10-01", [2026])]
    assert q(wh, "select distinct vintage from marts.fct_monthly_rankings") == [(2021,)]
    readme = (demo_run / "exports" / "2021-08" / "LISEZMOI.txt").read_text(encoding="utf-8-sig")
    assert "millésime 2021" in readme and "decoupage-administratif 1.1.1" in readme


@pytest.mark.slow
def test_landing_run_over_a_range_with_empty_months(demo_run, tmp_path):
    """Landing files for 2021-06 and 2021-08 only: 2021-07 and 2021-09 are reported, not fatal."""
    data = tmp_path / "data"
    for month in (E2E_FROM, "2021-08"):
        shutil.copytree(demo_run / "landing" / "instagram" / month,
                        data / "landing" / "instagram" / month)
    proc = run_cli(["run", "--source", "landing", "--from", "2021-06", "--to", "2021-09",
                    "--data-dir", str(data)], data)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "not exported: 2021-07, 2021-09" in out
    exports = data / "exports"
    assert sorted(p.name for p in exports.iterdir() if p.is_dir()) == ["2021-06", "2021-08"]
    months = q(data / "warehouse.duckdb",
               "select distinct month from marts.fct_monthly_rankings order by 1")
    assert [str(m) for (m,) in months] == ["2021-06-01", "2021-08-01"]


@pytest.mark.slow
def test_simulator_categories_agree_with_dbt_on_every_vintage(demo_run):
    """The territory categories are derived twice: by dbt (`int_territories`, what is
    ranked) and by `reference.TERRITORIES_SQL` (the demo simulator's choice of who has an
    account, before dbt runs). Both must give the same kind, name, category and population
    for every territory of every vintage: seeds/vintages/<year>/ and the current seeds/."""
    from dagster_project.registry.territories import territories

    current = max(int(v) for (v,) in q(demo_run / "warehouse.duckdb",
                                        "select vintage from intermediate.int_territories"))
    checked = 0
    for vintage, folder in vintage_dirs(SEEDS):
        vintage = vintage or current
        python = territories.__wrapped__(folder)
        ours = sorted(zip(*(python.column(c).to_pylist()
                            for c in ("territory_id", "kind", "name", "category", "population"))))
        dbt = sorted(q(demo_run / "warehouse.duckdb", """
            select territory_id, kind, name, category, population
            from intermediate.int_territories where vintage = ?""", [vintage]))
        assert len(ours) == len(dbt) > 30_000, vintage
        diff = sorted(set(ours) ^ set(dbt))
        assert diff == [], (vintage, diff[:10])
        checked += 1
    assert checked == len(vintage_dirs(SEEDS)) >= 8
