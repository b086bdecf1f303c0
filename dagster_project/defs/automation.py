"""What makes the observatory run itself under `observatoire serve`: schedules and sensors on,
the nightly archive check, and the recovery of runs left "started" by a crash.

Schedules and sensors are on by default only when `OBSERVATOIRE_AUTOMATION=on` (set by
`observatoire serve`); `run` and `ui` keep them off (they can still be turned on in the UI).
"""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from dagster import (
    DagsterEventType,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Failure,
    RunsFilter,
    job,
    op,
    schedule,
)

AUTOMATION_ENV = "OBSERVATOIRE_AUTOMATION"
PID_TAG = "observatoire/pid"          # set by the CLI's in-process runs
PARIS = "Europe/Paris"


def automation_on() -> bool:
    return os.environ.get(AUTOMATION_ENV, "").strip().lower() in ("on", "1", "true", "yes")


def schedule_status() -> DefaultScheduleStatus:
    return DefaultScheduleStatus.RUNNING if automation_on() else DefaultScheduleStatus.STOPPED


def sensor_status() -> DefaultSensorStatus:
    return DefaultSensorStatus.RUNNING if automation_on() else DefaultSensorStatus.STOPPED


def interval_s(name: str, default: int) -> int:
    """A sensor interval from the environment (tests shorten them)."""
    try:
        return max(1, int(os.environ.get(name) or default))
    except ValueError:
        return default


# --- runs left "started" by a crash ------------------------------------------------------

def _clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def _process_started_at(pid: int) -> float | None:
    """When process `pid` started (epoch seconds; None when it does not exist or /proc is
    not readable)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (OSError, StopIteration, ValueError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":        # a zombie has finished
        return None
    return boot + int(fields[19]) / _clock_ticks()


def alive(pid: int, since: float | None = None) -> bool:
    """True while process `pid` exists and, when `since` is given, started no later than
    that moment (after a reboot the same pid may be another process)."""
    started = _process_started_at(pid)
    if started is None:
        return False
    return since is None or started <= since + 2.0


def worker_pid(instance, run) -> tuple[int, float | None] | None:
    """(pid, when it was recorded) of the process running `run`: the CLI's tag, or the run
    worker the code server started ("Started process for run (pid: N)")."""
    if run.tags.get(PID_TAG):
        record = instance.get_run_record_by_id(run.run_id)
        since = record.create_timestamp.timestamp() if record is not None else None
        return int(run.tags[PID_TAG]), since
    records = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ENGINE_EVENT,
                                           limit=50).records
    for rec in records:
        data = rec.event_log_entry.dagster_event.event_specific_data
        pid = (getattr(data, "metadata", None) or {}).get("pid")
        if pid is not None:
            return int(getattr(pid, "value", pid)), rec.event_log_entry.timestamp
    return None


def recover_dead_runs(instance) -> list[tuple[str, int]]:
    """Mark failed every run in progress whose process is gone (killed, crash, reboot) and
    free its `warehouse` pool slots, so that it stops holding the run queue; a run stuck
    cancelling is marked cancelled. A run whose process is not known yet (still starting)
    is left to run monitoring's start timeout. Returns (run id, pid) of each."""
    recovered = []
    runs = instance.get_runs(RunsFilter(statuses=[
        DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.CANCELING]))
    for run in runs:
        found = worker_pid(instance, run)
        if found is None or alive(*found):
            continue
        pid = found[0]
        message = (f"the run's process (pid {pid}) is gone (killed, crash or reboot): "
                   "marked failed by observatoire")
        if run.status == DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, message.replace("failed", "cancelled"))
        else:
            instance.report_run_failed(run, message)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        recovered.append((run.run_id, pid))
    return recovered


# --- the nightly archive check -------------------------------------------------------------

@op(pool="warehouse", description="verify the landing archive against its manifests and "
    "the warehouse; back it up to OBSERVATOIRE_BACKUP_DIR when set")
def verify_and_backup(context) -> None:
    from .. import archive
    from ..settings import load_settings

    settings = load_settings()
    report = archive.verify(settings.landing_dir,
                            settings.warehouse if settings.warehouse.exists() else None)
    lines = archive.summary_lines(report)
    context.log.info("verify: %s", "; ".join(lines) or "ok")
    dest = os.environ.get("OBSERVATOIRE_BACKUP_DIR")
    if dest:
        result = archive.backup(settings.landing_dir, Path(dest),
                                archive.registry_files(settings.data_dir,
                                                       [settings.accounts_file]))
        context.log.info(f"backup: {len(result.copied)} file(s) copied, {result.skipped} "
                         f"already there → {dest}")
        if not result.ok:
            raise Failure("backup incomplete: " + "; ".join(
                str(f) for f in result.findings[:5]))
    if not report.ok:
        raise Failure(f"the archive check of {dt.date.today()} found "
                      f"{len(report.errors)} problem(s): "
                      + "; ".join(str(f) for f in report.errors[:5]))


@job(description="Every night: verify the archive, then back it up (OBSERVATOIRE_BACKUP_DIR).")
def nightly_archive():
    verify_and_backup()


@schedule(job=nightly_archive, cron_schedule="30 4 * * *", execution_timezone=PARIS,
          default_status=schedule_status(),
          description="Every night at 04:30 (Paris): verify the archive and back it up to "
                      "OBSERVATOIRE_BACKUP_DIR when set.")
def nightly_archive_schedule(context):
    return {}
