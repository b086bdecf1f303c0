"""`observatoire serve`: the Dagster webserver and exactly one daemon, supervised as one.

Both run on the project's DAGSTER_HOME, each in its own process group. SIGINT, SIGTERM or
SIGHUP stops both: runs in flight are cancelled first (so that they end CANCELED, not
crashed), then the signal is forwarded to each group, then SIGKILL after the grace period,
and serve exits 0. If either dies on its own, the other is stopped and serve exits 1, so
that systemd (Restart=on-failure) starts the pair again. Every `sweep_every_s` the
supervisor marks failed the runs whose process is gone (`automation.recover_dead_runs`), so
that a crashed run never holds the run queue.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_S = 30.0
CANCEL_S = 20.0       # how long in-flight runs get to end CANCELED before the stop goes on
POLL_S = 0.5
SWEEP_ENV = "OBSERVATOIRE_SWEEP_INTERVAL_S"
SWEEP_S = 60.0
MODULE = "dagster_project.definitions"


def commands(host: str, port: int) -> dict[str, list[str]]:
    """The two processes serve supervises (the project environment's executables)."""
    bin_dir = Path(sys.executable).parent
    return {
        "webserver": [str(bin_dir / "dagster-webserver"), "-m", MODULE, "-h", host,
                      "-p", str(port)],
        "daemon": [str(bin_dir / "dagster-daemon"), "run", "-m", MODULE],
    }


def _restore_signals() -> None:
    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)


def start(cmd: list[str]) -> subprocess.Popen:
    """Start `cmd` as the leader of a new process group, default signal handlers restored
    (background shells start us with SIGINT/SIGTERM ignored, and children inherit that)."""
    return subprocess.Popen(cmd, preexec_fn=_restore_signals,  # noqa: PLW1509 — before exec
                            start_new_session=True)


def killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Signalled(BaseException):  # not caught by the sweep's `except Exception`
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def stop_all(procs: dict[str, subprocess.Popen], sig: int, grace_s: float,
             say: Callable[[str], None]) -> None:
    """Send `sig` to every process group, wait up to `grace_s`, SIGKILL what is left."""
    for proc in procs.values():
        killpg(proc.pid, sig)
    deadline = time.monotonic() + grace_s
    for name, proc in procs.items():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{name} still running after {grace_s:.0f} s: killing it")
    for proc in procs.values():
        killpg(proc.pid, signal.SIGKILL)  # stragglers of each group (code servers, …)
        proc.wait()


def sweep_interval() -> float:
    try:
        return max(1.0, float(os.environ.get(SWEEP_ENV) or SWEEP_S))
    except ValueError:
        return SWEEP_S


def recover(say: Callable[[str], None]) -> None:
    """Mark failed the runs whose process is gone (never raises: serve must keep running)."""
    from dagster import DagsterInstance

    from dagster_project.defs.automation import recover_dead_runs

    try:
        with DagsterInstance.get() as instance:
            for run_id, pid in recover_dead_runs(instance):
                say(f"run {run_id} was left in progress by a process that is gone "
                    f"(pid {pid}): marked failed")
    except Exception as exc:  # noqa: BLE001 - a storage hiccup: the next sweep retries
        say(f"crashed-run check skipped: {type(exc).__name__}: {exc}")


def cancel_in_flight(say: Callable[[str], None], timeout_s: float = CANCEL_S) -> None:
    """Ask the run workers of the runs in progress to stop, and wait (bounded) until they
    end, so that a stop leaves CANCELED runs rather than runs a crash left behind."""
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    in_flight = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED,
                 DagsterRunStatus.CANCELING]
    try:
        with DagsterInstance.get() as instance:
            runs = instance.get_runs(RunsFilter(statuses=in_flight))
            for run in runs:
                say(f"cancelling run {run.run_id} ({run.job_name})")
                with contextlib.suppress(Exception):
                    instance.run_launcher.terminate(run.run_id)
            deadline = time.monotonic() + timeout_s
            ids = [r.run_id for r in runs]
            while ids and time.monotonic() < deadline:
                time.sleep(0.5)
                ids = [i for i in ids if instance.get_run_by_id(i).status in in_flight]
            if ids:
                say(f"{len(ids)} run(s) still in progress after {timeout_s:.0f} s: stopping "
                    "anyway (marked failed at the next start)")
    except Exception as exc:  # noqa: BLE001 - stopping must go on
        say(f"could not cancel the runs in flight: {type(exc).__name__}: {exc}")


def supervise(procs: dict[str, subprocess.Popen], say: Callable[[str], None],
              grace_s: float = GRACE_S, sweep: Callable[[], None] | None = None,
              on_signal: Callable[[], None] | None = None) -> int:
    """Wait until a signal comes (`on_signal`, stop all, return 0) or a process dies (stop
    the others, return 1); call `sweep` every `sweep_interval()` seconds meanwhile."""
    def handler(signum, _frame) -> None:
        raise Signalled(signum)

    previous = {sig: signal.signal(sig, handler) for sig in FORWARDED_SIGNALS}
    next_sweep = time.monotonic() + sweep_interval()
    try:
        try:
            while True:
                if sweep is not None and time.monotonic() >= next_sweep:
                    sweep()
                    next_sweep = time.monotonic() + sweep_interval()
                for name, proc in procs.items():
                    code = proc.poll()
                    if code is not None:
                        for sig in FORWARDED_SIGNALS:
                            signal.signal(sig, signal.SIG_IGN)
                        say(f"{name} exited (code {code}): stopping the others")
                        # its own group too: a dead daemon leaves its code server and run
                        # workers behind
                        stop_all(procs, signal.SIGTERM, grace_s, say)
                        return 1
                time.sleep(POLL_S)
        except Signalled as got:
            for sig in FORWARDED_SIGNALS:  # a second signal must not interrupt the clean-up
                signal.signal(sig, signal.SIG_IGN)
            say(f"{signal.Signals(got.signum).name} received: stopping the webserver and "
                "the daemon…")
            if on_signal is not None:
                on_signal()
            stop_all(procs, got.signum, grace_s, say)
            return 0
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# --- what `observatoire status` says of serve ---------------------------------------------

HEARTBEAT_FRESH_S = 120.0   # the daemon writes a heartbeat every 30 s or so


def daemon_state(heartbeats: dict[str, float], now: float) -> str:
    """'alive …' / 'not running …' from the daemons' last heartbeats (epoch seconds; pure)."""
    if not heartbeats:
        return "never started on this DAGSTER_HOME (start it with `observatoire serve`)"
    last = max(heartbeats.values())
    age = now - last
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(last))
    if age <= HEARTBEAT_FRESH_S:
        return f"daemon alive (last heartbeat {age:.0f} s ago, {len(heartbeats)} daemons)"
    return f"not running: last daemon heartbeat {stamp}"


def next_ticks(schedules, after: float, keep=None) -> list[tuple[str, str]]:
    """(schedule name, next tick 'YYYY-MM-DD HH:MM (zone)') for each schedule; `keep(name,
    local datetime)` leaves out ticks whose evaluation skips (at most 62 looked at)."""
    import datetime as dt
    from itertools import islice
    from zoneinfo import ZoneInfo

    from dagster._utils.schedules import cron_string_iterator  # Dagster's own cron reader

    out = []
    for sch in schedules:
        zone = sch.execution_timezone or "UTC"
        for tick in islice(cron_string_iterator(after, sch.cron_schedule, zone), 62):
            local = dt.datetime.fromtimestamp(tick.timestamp(), ZoneInfo(zone))
            if keep is None or keep(sch.name, local):
                out.append((sch.name, local.strftime("%Y-%m-%d %H:%M") + f" ({zone})"))
                break
    return out


def status_rows(dagster_home, now: float | None = None) -> list[tuple[str, str]]:
    """The rows `observatoire status` adds about serve: is its daemon alive, the next ticks
    of the schedules (which run only while serve runs)."""
    from dagster import DagsterInstance

    from dagster_project.collect.plan import load_plan_settings, window_days_left
    from dagster_project.defs.schedules import schedules

    now = time.time() if now is None else now
    beats: dict[str, float] = {}
    if (Path(dagster_home) / "dagster.yaml").exists():
        with DagsterInstance.from_config(str(dagster_home)) as instance:
            beats = {str(k): hb.timestamp for k, hb in instance.get_daemon_heartbeats().items()}
    rows = [("serve", daemon_state(beats, now))]
    window = load_plan_settings().window_days

    def keep(name: str, local) -> bool:  # the collection skips the days before its window
        return name != "graph_api_collection" or window_days_left(local.date(), window) > 0

    rows += [(f"  next {name}", when) for name, when in next_ticks(schedules, now, keep)]
    return rows
