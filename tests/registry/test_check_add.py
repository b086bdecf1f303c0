"""`observatoire accounts check` (real HTTP against the fake Graph API) and `accounts add`."""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fake_graph_api import FakeGraphAPI

from dagster_project.collect.graph_api import CollectorOptions, TokenError
from dagster_project.registry.accounts import read_registry
from dagster_project.registry.add import add_from_report, merge_report
from dagster_project.registry.check import check_accounts, read_input
from dagster_project.registry.territories import territory_ids, territory_names
from dagster_project.settings import Settings

TOKEN = "EAAcheck-s3cr3t-token"
ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "seeds" / "instagram_accounts.csv"
FAST = CollectorOptions(page_size=1, max_pages=1, backoff_scale=0.001)


@pytest.fixture
def api():
    fake = FakeGraphAPI(token=TOKEN)
    fake.add_account("toulouse", followers=120_000)
    fake.add_account("toulousemetropole", followers=40_000)
    fake.add_account("occitanieregion", followers=90_000)
    fake.add_account("stylemillau", not_business=True)
    fake.add_account("flaky", followers=10, permanent_5xx=True)
    with fake:
        yield fake


def settings_for(api, tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", dagster_home=tmp_path / "dagster",
                    accounts_file=tmp_path / "accounts.csv", graph_url=api.url,
                    instagram_user_id=api.user_id, access_token=TOKEN)


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def read_csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


CANDIDATES = [
    {"handle": "https://www.instagram.com/Toulouse/", "territory_id": "commune:31555",
     "status": "new"},
    {"handle": "toulousemetropole", "territory_id": "epci:243100518", "status": "new"},
    {"handle": "@OccitanieRegion", "territory_id": "region:76", "status": "new"},
    {"handle": "nobody_here", "territory_id": "commune:33063", "status": "new"},
    {"handle": "stylemillau", "territory_id": "epci:241200567", "status": "known"},
    {"handle": "flaky", "territory_id": "commune:74010", "status": "new"},
    {"handle": "haut Savoie le Departement", "territory_id": "departement:74",
     "status": "invalid"},
    {"handle": "toulouse", "territory_id": "commune:31555", "status": "new"},   # same handle
]


def test_check_statuses_resume_and_no_token_anywhere(api, tmp_path):
    src = write_csv(tmp_path / "candidates.csv", CANDIDATES)
    out = tmp_path / "checked.csv"
    items = read_input(src)
    assert len(items) == 7  # the second toulouse row is the same handle
    counts = check_accounts(items, out, settings_for(api, tmp_path), options=FAST)
    assert counts == {"ok": 3, "not_found": 1, "not_business": 1, "error": 1, "invalid": 1}
    rows = {r["handle"]: r for r in read_csv(out)}
    assert list(read_csv(out)[0]) == ["handle", "territory_id", "status", "followers",
                                      "ig_user_id", "name", "checked_at"]
    assert rows["toulouse"]["status"] == "ok" and rows["toulouse"]["followers"] == "120000"
    assert rows["toulouse"]["ig_user_id"] == api.accounts["toulouse"].id
    assert rows["toulouse"]["name"] == "Toulouse"
    assert rows["toulouse"]["checked_at"].endswith("Z")
    assert rows["nobody_here"]["status"] == "not_found"
    assert rows["stylemillau"]["status"] == "not_business"
    assert rows["flaky"]["status"] == "error" and rows["flaky"]["ig_user_id"] == ""
    assert rows["haut Savoie le Departement"]["status"] == "invalid"
    assert not any(" " in p or "Savoie" in p for p in api.raw_paths), "invalid never sent"
    assert TOKEN not in out.read_text() and all(TOKEN not in p for p in api.raw_paths)
    # one call per account (one post per page): cheap on Meta's budget
    assert api.count("toulouse") == 1

    # re-run: only the failed account is asked again; one row per handle in the end
    api.clear_scenario("flaky")
    before = {h: api.count(h) for h in ("toulouse", "nobody_here", "stylemillau", "flaky")}
    counts = check_accounts(items, out, settings_for(api, tmp_path), options=FAST)
    assert counts == {"ok": 4, "not_found": 1, "not_business": 1, "invalid": 1}
    after = {h: api.count(h) for h in before}
    assert after == {**before, "flaky": before["flaky"] + 1}
    assert len(read_csv(out)) == 7


def test_check_without_token_fails_clearly(api, tmp_path):
    s = settings_for(api, tmp_path)
    s = Settings(**{**s.__dict__, "access_token": None})
    src = write_csv(tmp_path / "c.csv", CANDIDATES[:1])
    with pytest.raises(TokenError, match="INSTAGRAM_ACCESS_TOKEN"):
        check_accounts(read_input(src), tmp_path / "out.csv", s)
    assert api.total_requests == 0


def test_check_then_add_through_the_cli(api, tmp_path):
    src = write_csv(tmp_path / "candidates.csv", CANDIDATES[:3])
    out = tmp_path / "checked.csv"
    registry = shutil.copy(REGISTRY, tmp_path / "accounts.csv")
    env = {**os.environ, "INSTAGRAM_ACCESS_TOKEN": TOKEN, "INSTAGRAM_USER_ID": api.user_id,
           "INSTAGRAM_GRAPH_URL": api.url, "OBSERVATOIRE_DATA_DIR": str(tmp_path / "data"),
           "OBSERVATOIRE_ACCOUNTS": str(registry)}
    cli = [sys.executable, "-m", "dagster_project.cli", "accounts"]
    proc = subprocess.run([*cli, "check", "--accounts", str(src), "--out", str(out)], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "ok 3" in proc.stderr and TOKEN not in proc.stderr + proc.stdout
    proc = subprocess.run([*cli, "add", "--from", str(out)], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "3 added" in " ".join(proc.stderr.split())
    accounts, rejected = read_registry(Path(registry), territory_ids())
    assert not rejected and len(accounts) == 17 + 3
    toulouse = next(a for a in accounts if a.handle == "toulouse")
    assert toulouse.territory_id == "commune:31555"
    assert toulouse.ig_user_id == api.accounts["toulouse"].id and toulouse.checked_on
    assert REGISTRY.read_text(encoding="utf-8") != Path(registry).read_text(encoding="utf-8")
    # a second add changes nothing but the dates it already had
    proc = subprocess.run([*cli, "add", "--from", str(out)], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0 and "0 added, 3 updated" in " ".join(proc.stderr.split())


def test_add_refuses_conflicts_row_by_row_and_keeps_columns(tmp_path):
    registry = Path(shutil.copy(REGISTRY, tmp_path / "accounts.csv"))
    header_before = registry.read_text(encoding="utf-8").splitlines()[0]
    report = write_csv(tmp_path / "report.csv", [
        {"handle": "toulouse", "territory_id": "commune:31555", "status": "ok",
         "followers": "1", "ig_user_id": "111", "name": "T", "checked_at": "2026-11-20T10:00:00Z"},
        {"handle": "paris_maville", "territory_id": "commune:75056", "status": "ok",
         "followers": "1", "ig_user_id": "222", "name": "P", "checked_at": "2026-11-20T10:00:00Z"},
        {"handle": "gers_autre", "territory_id": "departement:32", "status": "ok",
         "followers": "1", "ig_user_id": "333", "name": "G", "checked_at": "2026-11-20T10:00:00Z"},
        {"handle": "nowhere", "territory_id": "commune:99999", "status": "ok",
         "followers": "1", "ig_user_id": "444", "name": "N", "checked_at": "2026-11-20T10:00:00Z"},
        {"handle": "ghost", "territory_id": "commune:33063", "status": "not_found",
         "followers": "", "ig_user_id": "", "name": "", "checked_at": "2026-11-20T10:00:00Z"},
        {"handle": "gersledepartement", "territory_id": "departement:32", "status": "ok",
         "followers": "1", "ig_user_id": "555", "name": "G", "checked_at": "2026-11-21T10:00:00Z"},
    ])
    result = add_from_report(registry, report, territory_ids(), territory_names())
    assert result.added == ["toulouse"] and result.updated == ["gersledepartement"]
    assert result.skipped == 1 and len(result.refused) == 3
    assert "already registered for departement:75" in result.refused[0]
    assert "already has the account @gersledepartement" in result.refused[1]
    assert "unknown territory_id 'commune:99999'" in result.refused[2]
    lines = registry.read_text(encoding="utf-8").splitlines()
    assert lines[0] == header_before + ",ig_user_id"
    assert lines[-1] == ("toulouse,commune:31555,https://www.instagram.com/toulouse/,"
                         "2026-11-20,Toulouse,111")
    assert any(line.startswith("gersledepartement,departement:32,") and
               line.endswith(",2026-11-21,Gers,555") for line in lines)
    assert not list(tmp_path.glob(".accounts.csv.*")), "no temp file left"

    # the id behind a known handle changed: refused, the registry keeps its id
    header, rows = ["handle", "territory_id", "ig_user_id"], [
        {"handle": "gersledepartement", "territory_id": "departement:32", "ig_user_id": "555"}]
    _, new_rows, res = merge_report(header, rows, [
        {"handle": "gersledepartement", "territory_id": "departement:32", "status": "ok",
         "ig_user_id": "999", "checked_at": "2026-12-01T00:00:00Z"}], territory_ids(), {})
    assert "differs from the registry's 555" in res.refused[0]
    assert new_rows[0]["ig_user_id"] == "555"
