"""`observatoire status` shows every part it can: the collection (needs the registry), the
token, serve, the archive, the warehouse and the published copy; a missing or unreadable
part is named on its own row and the others still print."""
from __future__ import annotations

import datetime as dt
import os

import duckdb
import pytest
from typer.testing import CliRunner

from dagster_project.cli.app import app
from dagster_project.service.status import LastRun
from dagster_project.settings import PROJECT_ROOT as ROOT


@pytest.fixture
def clean_env(monkeypatch):
    """No OBSERVATOIRE_, INSTAGRAM_ or DAGSTER_ variable: only what the test gives."""
    for name in list(os.environ):
        if name.startswith(("OBSERVATOIRE_", "INSTAGRAM_", "DAGSTER_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "250")
    return monkeypatch


def status(*args: str):
    return CliRunner().invoke(app, ["status", *args])


def test_without_a_registry_every_other_part_still_shows(clean_env, tmp_path):
    data, missing = tmp_path / "data", tmp_path / "nowhere" / "accounts.csv"
    clean_env.setenv("OBSERVATOIRE_ACCOUNTS", str(missing))
    res = status("--data-dir", str(data))
    out = res.output
    assert res.exit_code == 1, out                     # a missing piece: documented exit 1
    assert f"missing ({missing})" in out and "observatoire accounts add" in out
    assert "OBSERVATOIRE_ACCOUNTS" in out
    assert "never started on this DAGSTER_HOME" in out                # serve
    assert "next monthly_publication" in out                         # its schedules
    assert "not set (INSTAGRAM_ACCESS_TOKEN)" in out                   # the token
    assert "no landed month yet" in out                                # the archive
    assert "warehouse" in out and "not built yet" in out
    assert "published copy" in out and "missing" in out
    assert not data.exists()                                           # status only reads


def test_with_a_registry_but_no_warehouse(clean_env, tmp_path):
    registry = ROOT / "seeds" / "instagram_accounts.csv"
    total = len(registry.read_text(encoding="utf-8").splitlines()) - 1
    res = status("--data-dir", str(tmp_path / "data"), "--accounts", str(registry))
    out = res.output
    assert res.exit_code == 0, out          # a data folder not built yet is not an error
    assert "Graph API collection" in out and f"({total} accounts)" in out
    assert f"0 / {total}" in out and "none this month" in out
    assert "warehouse" in out and "not built yet" in out
    assert "published copy" in out and "missing" in out
    assert "status incomplete" not in out


def test_the_published_copy_shows_its_newest_month(clean_env, tmp_path):
    data = tmp_path / "data"
    for month in ("2026-01", "2026-02"):
        (data / "landing" / "instagram" / month).mkdir(parents=True)
    duckdb.connect(str(data / "warehouse.duckdb")).close()
    published = data / "published" / "warehouse.duckdb"
    published.parent.mkdir(parents=True)
    with duckdb.connect(str(published)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.fct_monthly_rankings (month date, "
                    "is_provisional boolean, handle varchar)")
        con.execute("insert into marts.fct_monthly_rankings values "
                    "('2026-01-01', false, 'a'), ('2026-02-01', true, 'a'), "
                    "('2026-02-01', true, 'b')")
    res = status("--data-dir", str(data), "--accounts", str(ROOT / "seeds" / "instagram_accounts.csv"))
    out = res.output
    assert res.exit_code == 0, out
    assert "newest month 2026-02 (provisional), 2 month(s) ranked" in out
    assert "2 month(s), 2026-01 → 2026-02" in out                  # the archive
    assert str(data / "warehouse.duckdb") in out and "not built yet" not in out


def test_a_part_that_fails_shows_its_error_and_the_others_still_print(clean_env, tmp_path,
                                                                       monkeypatch):
    from dagster_project.collect import graph_api

    data = tmp_path / "data"
    published = data / "published" / "warehouse.duckdb"
    published.parent.mkdir(parents=True)
    published.write_bytes(b"not a duckdb file at all" * 100)
    secret = "EAAGsecret-STATUS-token-42"
    clean_env.setenv("INSTAGRAM_ACCESS_TOKEN", secret)

    def broken(settings, **_):
        raise RuntimeError(f"boom while checking {settings.access_token}")

    monkeypatch.setattr(graph_api, "check_token", broken)
    res = status("--data-dir", str(data), "--accounts", str(ROOT / "seeds" / "instagram_accounts.csv"))
    out = res.output
    assert res.exit_code == 1, out
    assert "could not be read: RuntimeError: boom while checking ***" in out and secret not in out
    assert out.count("could not be read") == 2                     # the token, the copy
    assert "status incomplete: token unreadable, published copy unreadable" in out
    assert "Graph API collection" in out and "never started on this DAGSTER_HOME" in out
    assert "not built yet" in out                                  # the warehouse


def test_the_nightly_check_shows_its_last_run_and_verify_alert(tmp_path):
    from dagster import DagsterInstance, DagsterRunStatus
    from dagster._core.test_utils import create_run_for_test

    from dagster_project.defs.automation import verify_alert
    from dagster_project.defs.instance import ensure_instance
    from dagster_project.service import alerts
    from dagster_project.service.status import nightly_part, nightly_rows

    home, data = tmp_path / "dagster", tmp_path / "data"
    assert nightly_part(home, data).rows[0][1].startswith("never run on this DAGSTER_HOME")
    ensure_instance(home)
    with DagsterInstance.from_config(str(home)) as instance:
        create_run_for_test(instance, job_name="nightly_archive", status=DagsterRunStatus.SUCCESS)
    alerts.record(data, "verify_failed:today", verify_alert(dt.date.today(), ["2026-01/x.ndjson.gz: altered"]))
    rows = dict(nightly_part(home, data).rows)
    assert ("[green]success[/]; [red]verify found problems[/]: Observatoire: the nightly archive "
            "check of") in rows["  nightly check"]
    assert rows["  backup"].startswith("not configured")
    failed = nightly_rows(LastRun("r1", "FAILURE", 0.0, 1.0), None, "/mnt/backup")
    assert failed == [("  nightly check", ("last run 1970-01-01 00:00 UTC: [red]failure[/] "
                                           "(run r1: its event log is in `observatoire ui`)")),
                      ("  backup", "to /mnt/backup (OBSERVATOIRE_BACKUP_DIR)")]
