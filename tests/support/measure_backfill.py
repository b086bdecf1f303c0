"""Time a 12-month backfill launched through the Dagster UI's GraphQL API against the same
range run by the CLI (not a test).

    .venv/bin/python tests/support/measure_backfill.py [--from 2020-01] [--to 2020-12]
        [--skip-ui] [--skip-cli] [--json out.json]

Each measurement gets its own fresh temporary data folder (and DAGSTER_HOME):
- ui:  `dagster dev` on a free port, "Launch backfill" of monthly_pipeline over the range
       (launchPartitionBackfill, the launchpad's resource config), timed from the mutation to
       the run's end and to the backfill's COMPLETED status (the backfill daemon ticks every 30 s);
- cli: `observatoire run --from … --to … --data-dir <tmp>` (wall time of the command), run
       after the server is stopped so that both have the 2 cores to themselves.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from dagster_ui_server import ROOT, DagsterDev, ensure_manifest, port_is_free, venv_bin


def month_list(first: str, last: str) -> list[dt.date]:
    a, b = dt.date.fromisoformat(first + "-01"), dt.date.fromisoformat(last + "-01")
    out = []
    while a <= b:
        out.append(a)
        a = dt.date(a.year + a.month // 12, a.month % 12 + 1, 1)
    return out


def check_rankings(data_dir: Path, months: list[dt.date]) -> str:
    with duckdb.connect(str(data_dir / "published" / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("select month, count(distinct category), count(*) "
                           "from marts.fct_monthly_rankings group by 1").fetchall()
    per = {m: (c, n) for m, c, n in rows}
    missing = [m.isoformat() for m in months if per.get(m, (0, 0))[0] != 8]
    total = sum(per.get(m, (0, 0))[1] for m in months)
    return f"{len(months) - len(missing)}/{len(months)} months with 8 categories, {total} ranked rows" + (
        f" (MISSING {missing})" if missing else "")


def measure_ui(first: str, last: str, workdir: Path) -> dict:
    data = workdir / "data"
    srv = DagsterDev(data)
    out: dict = {"scenario": "ui", "data_dir": str(data)}
    try:
        srv.start()
        out["server_ready_s"] = round(srv.started_in, 1)
        t0 = time.time()
        bid = srv.launch_backfill(first, last)
        run = None
        while True:  # the run(s) of the backfill, until they have ended
            runs = srv.runs(tags=[{"key": "dagster/backfill", "value": bid}])
            if runs and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs):
                break
            if time.time() - t0 > 1800:
                raise TimeoutError(f"backfill {bid}: {runs}")
            time.sleep(1)
        t_runs_done = time.time()
        bf, runs = srv.wait_backfill(bid, timeout=120, poll=1)
        t_completed = time.time()
        run = runs[0]
        tags = {t["key"]: t["value"] for t in run["tags"]}
        steps = sorted(srv.step_stats(run["runId"]), key=lambda s: s["startTime"] or 0)
        prev_end = run["startTime"]
        step_rows = []
        for s in steps:
            step_rows.append({"step": s["stepKey"], "status": s["status"],
                              "waited_before_s": round((s["startTime"] or 0) - prev_end, 1),
                              "ran_s": round((s["endTime"] or 0) - (s["startTime"] or 0), 1)})
            prev_end = s["endTime"] or prev_end
        out |= {
            "backfill_status": bf["status"], "runs": len(runs), "run_status": run["status"],
            "range_tags": f"{tags.get('dagster/asset_partition_range_start')} → "
                          f"{tags.get('dagster/asset_partition_range_end')}",
            "launch_to_run_created_s": round(run["creationTime"] - t0, 1),
            "run_queued_s": round(run["startTime"] - run["creationTime"], 1),
            "run_start_to_end_s": round(run["endTime"] - run["startTime"], 1),
            "launch_to_run_end_s": round(t_runs_done - t0, 1),
            "launch_to_backfill_completed_s": round(t_completed - t0, 1),
            "steps": step_rows,
        }
        if run["status"] != "SUCCESS":
            out["failure"] = srv.run_failure(run["runId"])
    finally:
        srv.stop()
        out["port_free_after_stop"] = port_is_free(srv.port)
    out["check"] = check_rankings(data, month_list(first, last))
    return out


def measure_cli(first: str, last: str, workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OBSERVATOIRE_", "DAGSTER_"))}
    env |= {"DBT_SEND_ANONYMOUS_USAGE_STATS": "False", "OBSERVATOIRE_SEEDS_DIR": str(ROOT / "seeds")}
    cmd = [str(venv_bin() / "observatoire"), "run", "--from", first, "--to", last,
           "--data-dir", str(data)]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, check=False, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=3600)
    wall = time.monotonic() - t0
    out = {"scenario": "cli", "data_dir": str(data), "command": " ".join(cmd[1:]),
           "returncode": proc.returncode, "wall_s": round(wall, 1)}
    done = re.search(r"done\[/?\w*\]? in (\d+) s|done in (\d+) s", proc.stderr)
    if done:
        out["reported_run_s"] = int(done.group(1) or done.group(2))
    out["steps"] = [ln.strip() for ln in proc.stderr.splitlines() if re.search(r": (ok|FAILED|skipped) \(", ln)]
    if proc.returncode != 0:
        out["stderr_tail"] = proc.stderr[-3000:]
    else:
        out["check"] = check_rankings(data, month_list(first, last))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="first", default="2020-01")
    ap.add_argument("--to", dest="last", default="2020-12")
    ap.add_argument("--skip-ui", action="store_true")
    ap.add_argument("--skip-cli", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    ensure_manifest()
    results = []
    with tempfile.TemporaryDirectory(prefix="obs-measure-") as tmp:
        tmp = Path(tmp)
        if not args.skip_ui:
            results.append(measure_ui(args.first, args.last, tmp / "ui"))
            print(json.dumps(results[-1], indent=1), flush=True)
        if not args.skip_cli:
            results.append(measure_cli(args.first, args.last, tmp / "cli"))
            print(json.dumps(results[-1], indent=1), flush=True)
    print(f"\n{len(month_list(args.first, args.last))}-month backfill {args.first} → {args.last}")
    for r in results:
        if r["scenario"].startswith("ui"):
            print(f"  {r['scenario']:4s} launch → run end {r.get('launch_to_run_end_s')} s "
                  f"(run itself {r.get('run_start_to_end_s')} s; daemon pickup "
                  f"{r.get('launch_to_run_created_s')} s, queue {r.get('run_queued_s')} s); "
                  f"→ backfill COMPLETED {r.get('launch_to_backfill_completed_s')} s; "
                  f"{r.get('runs')} run; {r.get('check')}")
        else:
            print(f"  {'cli':4s} wall {r['wall_s']} s (run itself {r.get('reported_run_s')} s); "
                  f"rc {r['returncode']}; {r.get('check')}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
