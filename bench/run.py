"""`make bench`: speed and memory figures with their targets, measured in one run.

    python -m bench.run [--quick] [--skip-scale] [--save]

Prints a table (figure, value, target, pass/fail) and writes bench/out/results.json (or
results-quick.json), which git ignores. `--save` (`make bench-save`) also updates the
committed reference, bench/results.json, with the date and the machine: only on purpose.
Every pipeline run is a real `observatoire run` subprocess in a fresh data folder.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dagster_project import months as m
from dagster_project.archive.landing import month_files
from dagster_project.load.snapshots import load_months

BIN = Path(sys.executable).parent


def env_for(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBSERVATOIRE_", "DAGSTER_"))}
    env.update(OBSERVATOIRE_DATA_DIR=str(data), DAGSTER_HOME=str(data / "dagster"),
               DBT_SEND_ANONYMOUS_USAGE_STATS="False")
    return env


class TreeMemory(threading.Thread):
    """Peak of the summed RSS of a process and all its descendants, sampled from /proc."""

    def __init__(self, pid: int, every_s: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.every_s, self.peak = pid, every_s, 0
        self.done = threading.Event()

    def run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self.done.wait(self.every_s):
            parents: dict[int, list[int]] = {}
            rss: dict[int, int] = {}
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    statm = Path(f"/proc/{entry}/statm").read_text().split()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                parents.setdefault(ppid, []).append(int(entry))
                rss[int(entry)] = int(statm[1]) * page
            todo, total = [self.pid], 0
            while todo:
                pid = todo.pop()
                total += rss.get(pid, 0)
                todo += parents.get(pid, [])
            self.peak = max(self.peak, total)


def pipeline(data: Path, first: dt.date, last: dt.date, *extra: str) -> tuple[float, float, float]:
    """Wall time, peak RSS of the largest process and peak RSS of all processes together
    (GiB) of one `observatoire run`."""
    cmd = [str(BIN / "python"), "-c",
           ("import resource, sys, subprocess; p = subprocess.run(sys.argv[1:]); "
            "print('MAXRSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
            "file=sys.stderr); sys.exit(p.returncode)"),
           str(BIN / "observatoire"), "run", "--from", m.month_key(first), "--to", m.month_key(last),
           "--data-dir", str(data), *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env_for(data), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    memory = TreeMemory(proc.pid)
    memory.start()
    _, stderr = proc.communicate()
    elapsed = time.perf_counter() - t0
    memory.done.set()
    memory.join()
    if proc.returncode != 0:
        raise SystemExit(f"run {first}..{last} failed:\n{stderr[-3000:]}")
    rss_kb = int(next(line.split()[1] for line in stderr.splitlines() if line.startswith("MAXRSS")))
    return elapsed, rss_kb / 2**20, memory.peak / 2**30


def step_times(data: Path) -> dict[str, float]:
    """Seconds per step of the latest run in `data` (from its Dagster event log)."""
    from dagster import DagsterInstance

    os.environ["DAGSTER_HOME"] = str(data / "dagster")
    with DagsterInstance.get() as instance:
        run = instance.get_runs(limit=1)[0]
        stats = instance.get_run_step_stats(run.run_id)
    return {s.step_key: round(s.end_time - s.start_time, 1) for s in stats
            if s.end_time and s.start_time}


def load_ratio(landing: Path, months: list[dt.date], work: Path) -> dict:
    """Rows/s of the project's loader vs DuckDB's own read_json + insert on the same files."""
    files = [str(p) for mo in months for p in month_files(landing, mo)]
    t0 = time.perf_counter()
    res = load_months(work / "loader.duckdb", landing, months)
    loader_s = time.perf_counter() - t0
    rows = res.loaded + res.media
    t0 = time.perf_counter()
    with duckdb.connect(str(work / "baseline.duckdb"), config={"memory_limit": "1GB"}) as con:
        con.execute("create table snaps as select * from read_json($1, format = 'newline_delimited')",
                    [files])
        con.execute("create table media as select handle, fetched_at, "
                    "unnest(business_discovery.media.data, recursive := true) from snaps "
                    "where business_discovery is not null")
        base_rows = sum(con.execute(f"select count(*) from {t}").fetchone()[0] for t in ("snaps", "media"))
    base_s = time.perf_counter() - t0
    return {"loader_s": round(loader_s, 2), "loader_rows": rows, "duckdb_s": round(base_s, 2),
            "duckdb_rows": base_rows, "ratio": round((rows / loader_s) / (base_rows / base_s), 3)}


def plain_size(path: Path) -> int:
    """Uncompressed size of a one-member gzip file (its trailer's ISIZE, mod 4 GiB)."""
    with open(path, "rb") as fh:
        fh.seek(-4, os.SEEK_END)
        return int.from_bytes(fh.read(4), "little")


def archive_figures(data: Path, work: Path) -> dict:
    """Landing size (compressed vs plain), `verify` time, backup time (first, incremental)."""
    from dagster_project.archive import backup as archive_backup
    from dagster_project.archive import verify as archive

    landing = data / "landing" / "instagram"
    files = sorted(landing.glob("*/*.ndjson.gz"))
    gz = sum(p.stat().st_size for p in files)
    plain = sum(plain_size(p) for p in files)
    t0 = time.perf_counter()
    report = archive.verify(landing, data / "warehouse.duckdb")
    verify_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    first = archive_backup.backup(landing, work / "backup", archive_backup.registry_files(data, []))
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = archive_backup.backup(landing, work / "backup", archive_backup.registry_files(data, []))
    again_s = time.perf_counter() - t0
    return {"landing_gz_mb": round(gz / 1e6, 1), "landing_plain_mb": round(plain / 1e6, 1),
            "files": len(files), "compression": round(plain / max(gz, 1), 1),
            "verify_s": round(verify_s, 2), "verify_ok": report.ok,
            "backup_first_s": round(first_s, 2), "backup_first_copied": len(first.copied),
            "backup_incremental_s": round(again_s, 2),
            "backup_incremental_copied": len(again.copied), "backup_ok": first.ok and again.ok}


def gib(path: Path) -> float:
    return round(path.stat().st_size / 2**30, 2)


SITE_STEP = "site__public_site"
EXPORTS_STEP = "exports__monthly_exports"
# A step's year-ten cost may exceed its year-one cost by 5 %, or by this many seconds (the
# step timer's resolution and a shared machine's noise on a step of 1-2 s).
STEP_SLACK_S = 0.5


def pipeline_s(steps: dict[str, float]) -> float:
    """Seconds of the data steps of a run (collect → load → dbt → publish → exports)."""
    return sum(v for k, v in steps.items() if k != SITE_STEP)


def copy_baseline(warehouse: Path, out: Path) -> float:
    """Seconds of one DuckDB COPY of the rows the exports write (the Top N of each category,
    every ranked territory of each département and région), with the columns they are made
    from, to CSV partitioned by month and file: what `exports_ratio` compares the exports
    step with."""
    columns = ("rank, rank_change, is_new_entry, in_top_n, category, territory_id, "
               "territory_name, departement_name, region_name, handle, followers, "
               "followers_growth, engagement_rate, engagement_hidden, posts_per_day, reach, "
               "score, is_demo")
    files = [("category || '.csv'", "in_top_n"),
             ("'departements/' || code_departement || '.csv'", "code_departement is not null"),
             ("'regions/' || code_region || '.csv'", "code_region is not null")]
    rows = " union all ".join(
        f"select strftime(month, '%Y-%m') as m, {name} as f, {columns} "
        f"from marts.fct_monthly_rankings where {where}" for name, where in files)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        t0 = time.perf_counter()
        con.execute(f"COPY ({rows}) TO '{out}' (FORMAT csv, PARTITION_BY (m, f))")
        return time.perf_counter() - t0


def national_figures(work: Path, first: dt.date, last: dt.date, year_one_add_s: float | None,
                     year_one_steps: dict[str, float]) -> dict:
    """Every territory with an account over the whole history, then one more month: the
    time and peak memory of the history, and what the month costs on top of it vs alone."""
    hist_last = m.add_months(last, -1)
    print(f"national scale: history {m.month_key(first)}..{m.month_key(hist_last)} …", flush=True)
    hist_s, hist_rss, hist_total = pipeline(work / "national", first, hist_last, "--scale")
    hist_steps = step_times(work / "national")
    print(f"national scale: {m.month_key(last)} alone, then added to the history …", flush=True)
    one_s, _, one_total = pipeline(work / "national-one", last, last, "--scale")
    add_s, _, add_total = pipeline(work / "national", last, last, "--scale")
    add_steps = step_times(work / "national")
    one_steps = step_times(work / "national-one")
    wh = work / "national" / "warehouse.duckdb"
    pub = (work / "national" / "published" / "warehouse.duckdb").resolve()
    months = len(m.month_range(first, hist_last))
    data_ratio = pipeline_s(add_steps) / pipeline_s(one_steps)
    print("national scale: the exports' rows by one DuckDB COPY …", flush=True)
    copy_s = copy_baseline(pub, work / "copy-baseline")
    exports_ratio = hist_steps.get(EXPORTS_STEP, 0) / copy_s
    fig = {
        "national_history_s": {"value": round(hist_s, 1), "target": "completes", "pass": True,
                               "months": months, "steps_s": hist_steps,
                               "warehouse_gib": gib(wh), "published_copy_gib": gib(pub),
                               "site_gib": round(sum(f.stat().st_size for f in
                                                     (work / "national" / "site").rglob("*")
                                                     if f.is_file()) / 2**30, 2)},
        "national_peak_memory_gib": {"value": round(hist_total, 2), "target": "<= 2 (all processes)",
                                     "pass": hist_total <= 2, "largest_process_gib": round(hist_rss, 2),
                                     "add_month_all_processes_gib": round(add_total, 2),
                                     "one_month_all_processes_gib": round(one_total, 2)},
        # the exports of the whole history vs DuckDB writing the same rows, same run
        "exports_ratio": {"value": round(exports_ratio, 2), "target": "<= 2",
                          "pass": exports_ratio <= 2,
                          "exports_step_s": hist_steps.get(EXPORTS_STEP),
                          "copy_s": round(copy_s, 1)},
        # information, not a target: the month alone skips costs a running observatory always
        # pays (the published copy of the whole warehouse, the pages of every territory)
        "national_incremental_ratio": {"value": round(add_s / one_s, 2), "target": "information",
                                       "pass": True, "add_month_s": round(add_s, 1),
                                       "one_month_alone_s": round(one_s, 1),
                                       "add_steps_s": add_steps, "alone_steps_s": one_steps},
        # the data steps only (collect → exports): the warehouse's cost per month
        "national_data_steps_ratio": {"value": round(data_ratio, 2), "target": "information",
                                      "pass": True,
                                      "add_month_s": round(pipeline_s(add_steps), 1),
                                      "one_month_alone_s": round(pipeline_s(one_steps), 1)},
    }
    if year_one_add_s:
        # the criterion: a month added after 12 months of history vs after the whole history,
        # what year ten costs more than year one (see bench/README.md, "Targets")
        ratio = add_s / year_one_add_s
        steps = {k: round(add_steps.get(k, 0) / max(v, 0.1), 2) for k, v in year_one_steps.items()}
        slow = sorted(k for k, v in year_one_steps.items()
                      if add_steps.get(k, 0) > max(1.05 * v, v + STEP_SLACK_S))
        fig["national_year_ten_vs_year_one"] = {
            "value": round(ratio, 2), "target": "<= 1.05, each step too",
            "pass": ratio <= 1.05 and not slow, "steps_over_target": slow,
            "step_ratios": steps,
            "add_month_after_12_months_s": round(year_one_add_s, 1),
            "add_month_after_history_s": round(add_s, 1),
            "data_steps_ratio": round(pipeline_s(add_steps) / pipeline_s(year_one_steps), 2),
            "add_steps_after_12_months_s": year_one_steps}
    return fig


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a few months only (smoke test)")
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--national", action=argparse.BooleanOptionalAction, default=True,
                    help="national scale over the whole history (≈10 min; --no-national skips)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folders")
    ap.add_argument("--save", action="store_true",
                    help="also update the committed reference bench/results.json")
    args = ap.parse_args()
    last = m.last_complete_month()
    first = m.add_months(last, -3) if args.quick else m.FIRST_MONTH
    work = Path(tempfile.mkdtemp(prefix="obs-bench-"))
    results: dict = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                     "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
                                f"{platform.python_implementation()} {platform.python_version()}",
                     "range": f"{m.month_key(first)}..{m.month_key(last)}", "figures": {}}
    fig = results["figures"]
    try:
        print(f"full run {m.month_key(first)}..{m.month_key(last)} …", flush=True)
        full_s, full_rss, full_total = pipeline(work / "full", first, last)
        print(f"one month {m.month_key(last)} into an empty warehouse …", flush=True)
        one_s, _, _ = pipeline(work / "one", last, last)
        print("history minus one month, then add the last month …", flush=True)
        pipeline(work / "incr", first, m.add_months(last, -1))
        add_s, _, _ = pipeline(work / "incr", last, last)
        print("load ratio …", flush=True)
        lr = load_ratio(work / "full" / "landing" / "instagram", m.month_range(first, last), work)
        print("archive: verify, backup (first, incremental) …", flush=True)
        ar = archive_figures(work / "full", work)
        n_months = len(m.month_range(first, last))
        fig["full_demo_run_s"] = {"value": round(full_s, 1), "target": "<= 120", "pass": full_s <= 120,
                                  "steps_s": step_times(work / "full"),
                                  "months": n_months}
        fig["backfill_ratio"] = {"value": round(full_s / one_s, 2), "target": "<= 6",
                                 "pass": full_s / one_s <= 6, "one_month_s": round(one_s, 1)}
        fig["incremental_ratio"] = {"value": round(add_s / one_s, 2), "target": "<= 1.5",
                                    "pass": add_s / one_s <= 1.5, "add_month_s": round(add_s, 1)}
        # the landing files are .ndjson.gz: both sides read the same compressed files
        fig["load_ratio"] = {"value": lr["ratio"], "target": ">= 0.8", "pass": lr["ratio"] >= 0.8,
                             "input": "ndjson.gz", **lr}
        fig["landing_compression"] = {"value": ar["compression"], "target": ">= 5 (x smaller)",
                                      "pass": ar["compression"] >= 5,
                                      **{k: ar[k] for k in ("landing_gz_mb", "landing_plain_mb", "files")}}
        fig["verify_s"] = {"value": ar["verify_s"], "target": "<= 30", "pass": ar["verify_s"] <= 30
                           and ar["verify_ok"]}
        fig["backup_first_s"] = {"value": ar["backup_first_s"], "target": "<= 60",
                                 "pass": ar["backup_first_s"] <= 60 and ar["backup_ok"],
                                 "copied": ar["backup_first_copied"]}
        fig["backup_incremental_s"] = {"value": ar["backup_incremental_s"], "target": "<= 10",
                                       "pass": ar["backup_incremental_s"] <= 10
                                       and ar["backup_incremental_copied"] == 0}
        fig["peak_memory_gib"] = {"value": round(full_total, 2), "target": "<= 2 (all processes)",
                                  "pass": full_total <= 2, "largest_process_gib": round(full_rss, 2)}
        year_one_add_s, year_one_steps = None, {}
        if not args.skip_scale:
            print("scale: every territory has an account, 12 months, then one more …", flush=True)
            s_first, s_last = m.add_months(last, -12), m.add_months(last, -1)
            scale_s, scale_rss, _ = pipeline(work / "scale", s_first, s_last, "--scale")
            with duckdb.connect(str(work / "scale" / "published" / "warehouse.duckdb"), read_only=True) as con:
                rows = sum(con.execute(f"select count(*) from raw.{t}").fetchone()[0]
                           for t in ("snapshots", "media"))
                accounts = con.execute("select count(*) from raw.accounts").fetchone()[0]
            fig["scale_12_months"] = {"value": round(rows / scale_s), "target": "completes; rows/s",
                                      "pass": True, "seconds": round(scale_s, 1), "accounts": accounts,
                                      "raw_rows": rows, "peak_memory_gib": round(scale_rss, 2)}
            year_one_add_s, _, _ = pipeline(work / "scale", last, last, "--scale")
            year_one_steps = step_times(work / "scale")
        if args.national:
            fig.update(national_figures(work, first, last, year_one_add_s, year_one_steps))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    out = ROOT / "bench" / "out" / ("results-quick.json" if args.quick else "results.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    if args.save and not args.quick:
        (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        print("reference updated: bench/results.json (commit it)")
    print(f"\n{'figure':<22}{'value':>12}  {'target':<20}result")
    for name, f in fig.items():
        print(f"{name:<22}{f['value']:>12}  {f['target']:<20}{'PASS' if f['pass'] else 'FAIL'}")
    print(f"\nwritten to {out}")
    if not all(f["pass"] for f in fig.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
