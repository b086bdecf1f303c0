"""Faults around a real pipeline run: SIGKILL during dbt build, a reader on the published copy."""
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pytest
from pipeline_support import BIN, ROOT, project_env, run_cli

pytestmark = pytest.mark.slow
MARTS = ("fct_account_monthly", "fct_monthly_rankings", "account_alerts", "dim_territories")


def snapshot_marts(warehouse: Path) -> dict:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {t: con.execute(f"select * exclude (is_provisional) from marts.{t} order by all"
                               if t == "fct_monthly_rankings" else
                               f"select * from marts.{t} order by all").fetchall() for t in MARTS}


def descendants(pid: int) -> list[int]:
    children = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(proc.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_sigkill_during_dbt_build_then_rerun_equals_clean_run(demo_run, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo_run, data)
    clean = snapshot_marts(data / "warehouse.duckdb")
    args = ["run", "--from", "2021-07", "--to", "2021-07", "--data-dir", str(data)]
    proc = subprocess.Popen([str(BIN / "observatoire"), *args], cwd=ROOT, env=project_env(data),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline, seen_dbt = time.monotonic() + 240, False
    while time.monotonic() < deadline and proc.poll() is None:
        if any("dbt" in cmdline(p) and " build" in cmdline(p) for p in descendants(proc.pid)):
            seen_dbt = True
            time.sleep(1.0)      # dbt is starting / building: kill it in the middle
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert seen_dbt and proc.returncode == -signal.SIGKILL
    rerun = run_cli(args, data)
    assert rerun.returncode == 0, rerun.stderr
    assert snapshot_marts(data / "warehouse.duckdb") == clean


def test_reader_holds_published_copy_during_a_run(demo_run, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo_run, data)
    published = data / "published" / "warehouse.duckdb"
    reader = duckdb.connect(str(published), read_only=True)
    try:
        before = reader.execute("select count(*) from marts.fct_monthly_rankings").fetchone()[0]
        proc = run_cli(["run", "--from", "2021-09", "--to", "2021-09", "--data-dir", str(data)], data)
        assert proc.returncode == 0, proc.stderr
        # The open reader still reads its (old) file; a new reader sees September.
        assert reader.execute("select count(*) from marts.fct_monthly_rankings").fetchone()[0] == before
    finally:
        reader.close()
    with duckdb.connect(str(published), read_only=True) as con:
        months = {r[0].isoformat() for r in con.execute(
            "select distinct month from marts.fct_monthly_rankings").fetchall()}
    assert "2021-09-01" in months


def test_two_cli_runs_at_once_both_succeed(demo_run, tmp_path):
    """Two `observatoire run` on the same warehouse at once: the second writer waits."""
    data = tmp_path / "data"
    shutil.copytree(demo_run, data)
    procs = [subprocess.Popen([str(BIN / "observatoire"), "run", "--from", month, "--to", month,
                               "--data-dir", str(data)], cwd=ROOT, env=project_env(data),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for month in ("2021-10", "2021-11")]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert "lock" not in err.lower()
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        months = {r[0].isoformat() for r in con.execute(
            "select distinct month from marts.fct_monthly_rankings").fetchall()}
    assert {"2021-10-01", "2021-11-01"} <= months
