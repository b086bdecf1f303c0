"""A warehouse rebuilt from a backup alone has the same marts as the original (slow: dbt)."""
from __future__ import annotations

import duckdb
import pytest
from pipeline_support import E2E_FROM, E2E_TO, project_env, run_cli

pytestmark = pytest.mark.slow


def marts(path) -> dict[str, list]:
    with duckdb.connect(str(path), read_only=True) as con:
        names = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' "
            "order by 1").fetchall()]
        return {n: con.execute(f'select * from marts."{n}" order by all').fetchall()
                for n in names}


def test_a_warehouse_rebuilt_from_the_backup_has_the_same_marts(demo_run, tmp_path):
    verified = run_cli(["verify"], demo_run)
    assert verified.returncode == 0, verified.stderr
    dest = tmp_path / "backup"
    proc = run_cli(["backup", "--to", str(dest)], demo_run)
    assert proc.returncode == 0, proc.stderr
    registry = dest / "demo" / "accounts.csv"
    assert registry.read_bytes() == (demo_run / "demo" / "accounts.csv").read_bytes()
    assert not (dest / "warehouse.duckdb").exists()
    rebuilt = run_cli(["run", "--source", "landing", "--from", E2E_FROM, "--to", E2E_TO,
                       "--accounts", str(registry), "--data-dir", str(dest)], dest)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    original, copy = marts(demo_run / "warehouse.duckdb"), marts(dest / "warehouse.duckdb")
    assert set(original) >= {"fct_monthly_rankings", "fct_account_monthly", "account_alerts",
                             "dim_territories"}
    assert {k: len(v) for k, v in copy.items()} == {k: len(v) for k, v in original.items()}
    for name in original:
        assert copy[name] == original[name], name
    assert run_cli(["verify"], dest).returncode == 0
    # the run's asset check verified the archive of its months
    import os

    from dagster import AssetCheckKey, AssetKey, DagsterInstance
    old = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = project_env(dest)["DAGSTER_HOME"]
    try:
        with DagsterInstance.get() as instance:
            history = instance.event_log_storage.get_asset_check_execution_history(
                AssetCheckKey(AssetKey(["raw", "instagram"]), "archive_verified"), limit=1)
            assert history and history[0].evaluation.passed
            assert history[0].evaluation.metadata["checked_against_raw"].value == 3
    finally:
        if old is None:
            os.environ.pop("DAGSTER_HOME")
        else:
            os.environ["DAGSTER_HOME"] = old
