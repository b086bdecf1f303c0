"""End to end through the Dagster UI's own GraphQL API, as a data engineer would click it.

`dagster dev` runs in a temporary data folder (DAGSTER_HOME written by `ensure_instance`):
1. "Materialize all → 2021-05…2021-07 → Launch backfill" on `monthly_pipeline`, with the
   launchpad's resource config: ONE run over the range (single-run backfill policy).
2. The published warehouse ranks all 8 categories in each month; the dbt tests of
   `marts/fct_monthly_rankings` are recorded as successful asset check executions.
3. Two runs launched at once (2021-08 and 2021-09): both succeed, their warehouse writers
   queued on pool "warehouse" instead of failing on DuckDB's file lock.
4. The server is stopped through its own process group and its port is free again.

    .venv/bin/pytest -m ui tests/defs/test_dagster_ui.py -s        # ~1.5 min; -s prints the timings
"""
from __future__ import annotations

import datetime as dt
import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest
from dagster_ui_server import DagsterDev, port_is_free

pytestmark = [pytest.mark.ui, pytest.mark.slow, pytest.mark.timeout(900)]

CATEGORIES = {"region", "departement", "metropole", "communaute_agglomeration",
              "communaute_communes", "grande_ville", "ville_moyenne", "petite_ville"}
BACKFILL = ("2021-05-01", "2021-07-01")
BACKFILL_MONTHS = [dt.date(2021, 5, 1), dt.date(2021, 6, 1), dt.date(2021, 7, 1)]
SINGLE_RUNS = ("2021-08-01", "2021-09-01")
RANKINGS = ["marts", "fct_monthly_rankings"]
TIMINGS: dict[str, float] = {}


def _report(name: str, seconds: float) -> None:
    TIMINGS[name] = seconds
    print(f"[ui timing] {name}: {seconds:.1f} s", flush=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    srv = DagsterDev(tmp_path_factory.mktemp("dagster_ui") / "data")
    t0 = time.monotonic()
    try:
        srv.start()
        _report("dagster dev ready (server_info + code location loaded)", srv.started_in)
        yield srv
    finally:
        srv.stop()
        _report("whole module", time.monotonic() - t0)
    assert port_is_free(srv.port), f"port {srv.port} still in use after stopping dagster dev"


@pytest.fixture(scope="module")
def backfill(server: DagsterDev) -> dict:
    """Launch the 3-month backfill and wait for its run(s) to finish."""
    t0 = time.monotonic()
    backfill_id = server.launch_backfill(*BACKFILL)
    # Wait for the run(s) (the backfill daemon ticks every 30 s: waiting for the backfill's own
    # COMPLETED status would add up to 30 s more; it is checked in the last test).
    deadline = time.monotonic() + 600
    while True:
        runs = server.runs(tags=[{"key": "dagster/backfill", "value": backfill_id}])
        if runs and all(r["status"] in {"SUCCESS", "FAILURE", "CANCELED"} for r in runs):
            covered = {r["tags"].get("dagster/asset_partition_range_end") for r in map(_tags, runs)}
            if BACKFILL[1] in covered:  # the run covering the last month exists and ended
                break
        bf = server.backfill(backfill_id)
        assert bf["status"] not in {"FAILED", "CANCELED", "COMPLETED_FAILED"}, bf
        assert time.monotonic() < deadline, f"backfill {backfill_id} did not finish: {runs}"
        time.sleep(2)
    _report("3-month backfill: launch → run finished", time.monotonic() - t0)
    for r in runs:
        _report(f"3-month backfill run {r['runId'][:8]} start → end", r["endTime"] - r["startTime"])
    return {"id": backfill_id, "runs": [_tags(r) for r in runs]}


def _tags(run: dict) -> dict:
    run = dict(run)
    if isinstance(run.get("tags"), list):
        run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
    return run


def _failures(server: DagsterDev, runs: list[dict]) -> str:
    return "\n".join(f"{r['runId']} {r['status']}: {server.run_failure(r['runId'])}"
                     for r in runs if r["status"] != "SUCCESS")


def _rankings(published: Path) -> dict[dt.date, set[str]]:
    with duckdb.connect(str(published), read_only=True) as con:
        rows = con.execute("select month, category, count(*), min(rank), max(rank) "
                           "from marts.fct_monthly_rankings group by all").fetchall()
    out: dict[dt.date, set[str]] = {}
    for month, category, n, lo, hi in rows:
        assert lo == 1 and hi == n, (month, category, n, lo, hi)
        out.setdefault(month, set()).add(category)
    return out


def test_backfill_is_one_run_over_the_range(server: DagsterDev, backfill: dict):
    runs = backfill["runs"]
    assert all(r["status"] == "SUCCESS" for r in runs), _failures(server, runs)
    assert len(runs) == 1, f"single-run backfill policy: expected ONE run, got {len(runs)}"
    run = runs[0]
    assert run["jobName"] == "monthly_pipeline"
    assert run["tags"]["dagster/asset_partition_range_start"] == BACKFILL[0]
    assert run["tags"]["dagster/asset_partition_range_end"] == BACKFILL[1]
    assert run["tags"]["dagster/backfill"] == backfill["id"]
    assert "dagster/partition" not in run["tags"]  # a range run, not one month
    # The launchpad's resource config reached the run.
    assert str(server.data_dir) in run["runConfigYaml"]
    assert "source: demo" in run["runConfigYaml"]


def test_published_warehouse_ranks_every_category_each_month(server: DagsterDev, backfill: dict):
    assert all(r["status"] == "SUCCESS" for r in backfill["runs"])
    published = server.data_dir / "published" / "warehouse.duckdb"
    assert published.exists()
    ranked = _rankings(published)
    for month in BACKFILL_MONTHS:
        assert ranked.get(month) == CATEGORIES, (month, ranked.get(month))


def test_dbt_tests_are_successful_asset_checks(server: DagsterDev, backfill: dict):
    """Every dbt test of the rankings ran in the backfill run and passed.

    dagster-dbt records one evaluation per test for the whole range (partition null); Dagster
    also plans one execution per month of the range, which it resolves to SKIPPED when the run
    ends (the UI shows them as "Skipped" next to the green evaluation). Those are tolerated;
    any FAILED / EXECUTION_FAILED execution, or a test without a passing evaluation, is not.
    """
    run_id = backfill["runs"][0]["runId"]
    checks = server.check_names(RANKINGS)
    assert len(checks) >= 5, checks  # not_null, accepted_values, uniqueness, ranks, range…
    problems = {}
    for name in checks:
        executions = [e for e in server.check_executions(RANKINGS, name) if e["runId"] == run_id]
        passed = [e for e in executions
                  if e["status"] == "SUCCEEDED" and (e["evaluation"] or {}).get("success")]
        others = [e for e in executions if e not in passed
                  and not (e["status"] == "SKIPPED" and e["partition"] and not e["evaluation"])]
        if not passed or others:
            problems[name] = executions
    assert not problems, f"asset checks of {'/'.join(RANKINGS)} did not succeed: {problems}"


def test_two_runs_at_once_queue_on_the_warehouse_pool(server: DagsterDev, backfill: dict):
    assert all(r["status"] == "SUCCESS" for r in backfill["runs"])
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:  # both launchRun requests at once
        run_ids = list(pool.map(server.launch_run, SINGLE_RUNS))
    runs = [_tags(r) for r in server.wait_runs(run_ids, timeout=600)]
    _report("two concurrent runs: launch → both finished", time.monotonic() - t0)
    for r in sorted(runs, key=lambda r: r["startTime"] or 0):
        _report(f"run {r['tags'].get('dagster/partition')} ({r['runId'][:8]}) start → end",
                (r["endTime"] or 0) - (r["startTime"] or 0))
    assert all(r["status"] == "SUCCESS" for r in runs), _failures(server, runs)
    assert sorted(r["tags"]["dagster/partition"] for r in runs) == sorted(SINGLE_RUNS)

    # They really ran at the same time, and their warehouse writers never overlapped.
    (a, b) = runs
    assert a["startTime"] < b["endTime"] and b["startTime"] < a["endTime"], "runs did not overlap"
    # The steps that write warehouse.duckdb: pool "warehouse" (limit 1 in the instance's
    # dagster.yaml written by ensure_instance).
    writer_steps = server.ops_in_pool("warehouse")
    assert len(writer_steps) >= 2, writer_steps  # load, dbt build, publish
    steps = {r["runId"]: server.step_stats(r["runId"]) for r in runs}
    writers = [(s["startTime"], s["endTime"], rid[:8], s["stepKey"])
               for rid, ss in steps.items() for s in ss if s["stepKey"] in writer_steps]
    assert len(writers) == 2 * len(writer_steps), (writer_steps, writers)
    writers.sort()
    for (s1, e1, r1, k1), (s2, e2, r2, k2) in itertools.pairwise(writers):
        assert e1 <= s2 + 0.5, f"pool 'warehouse' did not serialise {r1}:{k1} and {r2}:{k2}"

    ranked = _rankings(server.data_dir / "published" / "warehouse.duckdb")
    for month in [*BACKFILL_MONTHS, dt.date(2021, 8, 1), dt.date(2021, 9, 1)]:
        assert ranked.get(month) == CATEGORIES, (month, ranked.get(month))


def test_backfill_completed(server: DagsterDev, backfill: dict):
    bf, runs = server.wait_backfill(backfill["id"], timeout=120)
    assert bf["status"] == "COMPLETED_SUCCESS", bf
    assert bf["numPartitions"] == 3 and len(runs) == 1, (bf, runs)


def test_server_stops_by_its_process_group(server: DagsterDev):
    t0 = time.monotonic()
    server.stop()
    _report("stop (SIGINT to the process group)", time.monotonic() - t0)
    assert server.proc.poll() is not None
    assert port_is_free(server.port)
