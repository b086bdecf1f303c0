"""`observatoire run --source graph_api` against a local fake Graph API: rankings for the month."""
import csv
import datetime as dt
import gzip

import duckdb
import pytest
from fake_graph_api import FakeGraphAPI, make_media
from pipeline_support import ROOT, run_cli

pytestmark = pytest.mark.slow
TOKEN = "EAAGsecret-PIPELINE-token-42"


def test_graph_api_run_produces_provisional_rankings(tmp_path):
    with open(ROOT / "seeds" / "instagram_accounts.csv", encoding="utf-8") as fh:
        registry = list(csv.DictReader(fh))
    api = FakeGraphAPI(token=TOKEN)
    for i, row in enumerate(registry):
        api.add_account(row["handle"], followers=2000 + 500 * i, follows=100 + i,
                        media=make_media(40, per_day=0.5 + i / 10, prefix=f"p{i}_"))
    api.scenario("latenareze", not_found=True)
    api.scenario("stylemillau", not_business=True)
    api.scenario("haute_marne", throttle=1, throttle_code=4, retry_after="1")
    api.scenario("eureennormandie", fail_5xx=1)
    api.scenario("ariegeledpt", echo_token=True, bad_param=True)
    data = tmp_path / "data"
    with api:
        # no pacing against the local fake (Meta's 200 calls/h would space calls 22.5 s apart)
        proc = run_cli(["run", "--source", "graph_api", "--data-dir", str(data)], data,
                       INSTAGRAM_GRAPH_URL=api.url, INSTAGRAM_ACCESS_TOKEN=TOKEN,
                       INSTAGRAM_USER_ID=api.user_id, OBSERVATOIRE_GRAPH_CALLS_PER_HOUR="0")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status = run_cli(["status", "--data-dir", str(data)], data, COLUMNS="200")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "16 / 17 (94 %)" in status.stdout and "error 1 (retried next run)" in status.stdout
    assert "done" in status.stdout and f"{api.total_requests} in 1 run(s)" in status.stdout
    # the collection asset's metadata says where the month stands
    from dagster import AssetKey, DagsterInstance

    with DagsterInstance.from_config(str(data / "dagster")) as instance:
        event = instance.get_latest_materialization_event(AssetKey(["landing", "instagram_snapshots"]))
    meta = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    assert (meta["month_accounts_collected"], meta["month_accounts_total"]) == (16, 17)
    assert meta["month_error"] == 1 and meta["stopped_reason"] == "done"
    assert meta["month_requests"] == api.total_requests and meta["plan_quota"] == 17
    month = dt.date.today().replace(day=1)
    with duckdb.connect(str(data / "published" / "warehouse.duckdb"), read_only=True) as con:
        ranked = con.execute("""select category, count(*), bool_and(is_provisional), bool_or(is_demo),
                                       min(source), max(source)
                                from marts.fct_monthly_rankings where month = ? group by 1 order by 1""",
                             [month]).fetchall()
        alerts = dict(con.execute("select handle, latest_status from marts.account_alerts "
                                  "where month = ?", [month]).fetchall())
    # 9 départements and 8 CCs registered; 3 of them fail (not found, not business, bad param).
    assert ranked == [("communaute_communes", 6, True, False, "graph_api", "graph_api"),
                      ("departement", 8, True, False, "graph_api", "graph_api")]
    assert alerts == {"latenareze": "not_found", "stylemillau": "not_business", "ariegeledpt": "error"}
    assert api.count("haute_marne") >= 2 and api.count("eureennormandie") >= 2  # retried
    # The token appears in no file the run wrote (landing, warehouse, Dagster storage, logs).
    leaks = [p for p in data.rglob("*") if p.is_file() and TOKEN.encode() in (
        gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes())]
    assert leaks == []
    assert TOKEN not in proc.stdout + proc.stderr
