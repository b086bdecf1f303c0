"""End to end through Dagster: `observatoire run` on three demo months in a temp folder."""
import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from pipeline_support import ROOT, project_env, run_cli

from dagster_project.cli.run import STEPS

pytestmark = pytest.mark.slow
CATEGORIES = {"region", "departement", "metropole", "communaute_agglomeration",
              "communaute_communes", "grande_ville", "ville_moyenne", "petite_ville"}


def q(path, sql):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_rankings_for_every_category_and_month(demo_run):
    wh = demo_run / "published" / "warehouse.duckdb"
    rows = q(wh, "select month, category, count(*), min(rank), max(rank), bool_and(is_demo) "
                 "from marts.fct_monthly_rankings group by all order by all")
    months = {r[0] for r in rows}
    assert months == {dt.date(2021, 6, 1), dt.date(2021, 7, 1), dt.date(2021, 8, 1)}
    for month in months:
        assert {r[1] for r in rows if r[0] == month} == CATEGORIES
    assert all(r[3] == 1 and r[4] == r[2] and r[5] for r in rows)
    # The July 2021 example: Ténarèze was ranked in July and is unavailable in August.
    assert q(wh, "select alert from marts.account_alerts where handle = 'latenareze' "
                 "and month = '2021-08-01'") == [("unavailable",)]
    assert q(wh, "select count(*) from marts.fct_monthly_rankings where handle = 'latenareze' "
                 "and month = '2021-07-01'") == [(1,)]


def test_every_mart_row_of_the_demo_is_flagged_demo(demo_run):
    """dbt only tests that is_demo is not null: a demo run must flag every row."""
    wh = demo_run / "published" / "warehouse.duckdb"
    for table in ("fct_account_monthly", "fct_monthly_rankings", "account_alerts"):
        not_demo, rows = q(wh, f"select count(*) filter (where not is_demo), count(*) "
                               f"from marts.{table}")[0]
        assert rows > 0 and not_demo == 0, table


def test_one_alert_per_month_territory_and_kind(demo_run):
    """The alerts' uniqueness test in dbt only warns (alerts describe a month, they do not
    rank it): the build goes on, so it is checked here."""
    wh = demo_run / "published" / "warehouse.duckdb"
    assert q(wh, "select month, territory_id, alert from marts.account_alerts "
                 "group by all having count(*) > 1") == []


def test_published_copy_depends_on_no_file(demo_run, tmp_path):
    """The analysts' copy opens anywhere: no view reads a file (the reference CSVs are
    tables), and every view still answers from a copy of the file made elsewhere."""
    copy = tmp_path / "elsewhere.duckdb"
    shutil.copyfile((demo_run / "published" / "warehouse.duckdb").resolve(), copy)
    views = q(copy, "select schema_name, view_name, sql from duckdb_views() where not internal")
    assert views and not [v for v in views if "read_" in v[2].lower()]
    assert q(copy, """select table_type from information_schema.tables where table_schema =
                      'staging' and table_name = 'stg_reference__communes'""") == [("BASE TABLE",)]
    for schema, view, _ in views:
        q(copy, f'select * from "{schema}"."{view}" limit 1')


def test_run_is_recorded_in_dagster_home(demo_run):
    import os

    from dagster import DagsterInstance, DagsterRunStatus
    env = project_env(demo_run)
    old = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    try:
        with DagsterInstance.get() as instance:
            runs = instance.get_runs()
            assert [r.status for r in runs] == [DagsterRunStatus.SUCCESS]
            assert runs[0].job_name == "monthly_pipeline"
            assert runs[0].tags["dagster/asset_partition_range_start"] == "2021-06-01"
    finally:
        if old is None:
            os.environ.pop("DAGSTER_HOME")
        else:
            os.environ["DAGSTER_HOME"] = old


def test_exports_written(demo_run):
    folder = demo_run / "exports" / "2021-08"
    names = {p.name for p in folder.iterdir()}
    assert {f"{c}.csv" for c in CATEGORIES} | {"alertes.csv", "LISEZMOI.txt", "rapport.html"} <= names
    assert {f"top10_{c}.png" for c in CATEGORIES} <= names
    assert "SIMULÉES" in (folder / "LISEZMOI.txt").read_text(encoding="utf-8-sig").upper()


def test_rerun_of_one_month_is_idempotent(demo_copy, tmp_path):
    wh = demo_copy / "published" / "warehouse.duckdb"
    sql = "select * exclude (is_provisional) from marts.fct_monthly_rankings order by month, category, rank"
    before = q(wh, sql)
    proc = run_cli(["run", "--from", "2021-07", "--to", "2021-07", "--data-dir", str(demo_copy)], demo_copy)
    assert proc.returncode == 0, proc.stderr
    assert q(wh, sql) == before
    # the progress names each step once, as it ends, in the pipeline's order
    ends = [proc.stderr.find(f"  {label}: ok (") for label in STEPS.values()]
    assert -1 not in ends and ends == sorted(ends), proc.stderr
    assert all(proc.stderr.count(f"  {label}: ok (") == 1 for label in STEPS.values())
    # The marts built month range by month range (incremental) equal a full rebuild.
    full = tmp_path / "full"
    full.mkdir()
    shutil.copyfile(demo_copy / "warehouse.duckdb", full / "warehouse.duckdb")
    env = project_env(full, OBSERVATOIRE_SEEDS_DIR=str(ROOT / "seeds"),
                      OBSERVATOIRE_MONTH_FROM="2017-10-01", OBSERVATOIRE_MONTH_TO="2999-12-01")
    proc = subprocess.run([str(Path(sys.executable).parent / "dbt"), "build", "--full-refresh",
                           "--exclude", "test_type:unit"], cwd=ROOT / "dbt_project", env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]
    with duckdb.connect() as con:
        con.execute(f"attach '{demo_copy / 'warehouse.duckdb'}' as inc (read_only)")
        con.execute(f"attach '{full / 'warehouse.duckdb'}' as rebuilt (read_only)")
        marts = [t for (t,) in con.execute("select table_name from duckdb_tables() "
                                           "where database_name = 'inc' and schema_name = 'marts'").fetchall()]
        assert len(marts) == 6
        for t in marts + ["int_account_first_seen"]:
            schema = "intermediate" if t.startswith("int_") else "marts"
            diff = con.execute(f"""select count(*) from (
                (select * from inc.{schema}.{t} except all select * from rebuilt.{schema}.{t})
                union all
                (select * from rebuilt.{schema}.{t} except all select * from inc.{schema}.{t}))""").fetchone()[0]
            assert diff == 0, f"{t}: {diff} rows differ between incremental and full refresh"


def test_dbt_unit_tests_pass(demo_copy):
    """dbt opens the warehouse read-write: on a copy of the demo run's."""
    env = project_env(demo_copy, OBSERVATOIRE_SEEDS_DIR=str(ROOT / "seeds"))
    proc = subprocess.run([str(Path(sys.executable).parent / "dbt"), "test", "--select", "test_type:unit"],
                          cwd=ROOT / "dbt_project", env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]
    import yaml
    declared = sum(len(yaml.safe_load(f.read_text()).get("unit_tests") or [])
                   for f in (ROOT / "dbt_project" / "models").rglob("*.yml"))
    assert declared >= 7 and f"PASS={declared} " in proc.stdout


def test_bad_arguments_fail_clearly(tmp_path):
    proc = run_cli(["run", "--source", "graph_api", "--from", "2021-07", "--data-dir", str(tmp_path)], tmp_path)
    assert proc.returncode == 1
    assert "only returns today's figures" in proc.stderr
