"""What makes the observatory run itself under `observatoire serve`: schedules and sensors on,
the alert sensors, the nightly archive check, and the recovery of runs left "started" by a
crash.

Schedules and sensors are on by default only when `OBSERVATOIRE_AUTOMATION=on` (set by
`observatoire serve`); `run` and `ui` keep them off (they can still be turned on in the UI).
Alerts go through the outbox (`service/alerts.py`): one key per event, sent once, retried when
undelivered, never failing a run.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from zoneinfo import ZoneInfo

from dagster import (
    DagsterEventType,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Failure,
    RunFailureSensorContext,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    job,
    op,
    run_failure_sensor,
    schedule,
    sensor,
)

from dagster_project import months as m
from dagster_project.archive.landing import landed_months
from dagster_project.service.alerts import Alert, deliver_pending, notify, record
from dagster_project.service.liveness import alive

AUTOMATION_ENV = "OBSERVATOIRE_AUTOMATION"
# the blocking dbt tests a failed dbt step names (outside the marts' checks): its metadata
FAILED_TESTS = "failed_data_tests"
# set by Dagster on a failed run when dagster.yaml's run retries will run it again
WILL_RETRY_TAG = "dagster/will_retry"
PID_TAG = "observatoire/pid"          # set by the CLI's in-process runs
IN_PROGRESS = (DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.CANCELING)
PARIS = "Europe/Paris"
PUBLISH_DEADLINE = (2, 12)            # the month is published by the 2nd at 12:00 (Paris)
UNREADABLE = "published_unreadable_since"   # watch cursor: when the copy was first unreadable
UNREADABLE_ALERT_AFTER = dt.timedelta(hours=1)

log = logging.getLogger(__name__)


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
    runs = instance.get_runs(RunsFilter(statuses=list(IN_PROGRESS)))
    for listed in runs:
        found = worker_pid(instance, listed)
        if found is None or alive(*found):
            continue
        run = instance.get_run_by_id(listed.run_id)   # it may have ended since the listing
        if run is None or run.status not in IN_PROGRESS:
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


# --- alert texts (pure) --------------------------------------------------------------------

def _first_line(text: str, limit: int = 300) -> str:
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    return line[:limit]


def run_failure_alert(job_name: str, run_id: str, partition: str | None,
                      steps: list[tuple[str, str]], run_message: str,
                      failed_checks: list[str], will_retry: bool = False) -> Alert:
    """The alert for a failed run: its failing step and error, or its failed data tests;
    and, when Dagster's run retries will run it again (a crash, not a failed step), so."""
    month = partition[:7] if partition else None
    where = f" ({month})" if month else ""
    if failed_checks:
        shown = ", ".join(failed_checks[:5]) + (" …" if len(failed_checks) > 5 else "")
        text = (f"Observatoire: data test failed in run {run_id[:8]} of {job_name}{where}: "
                f"{shown}")
        event = "data_test_failed"
    elif steps:
        step, error = steps[0]
        text = (f"Observatoire: run {run_id[:8]} of {job_name}{where} failed at step "
                f"{step}: {_first_line(error)}")
        event = "run_failed"
    else:
        text = f"Observatoire: run {run_id[:8]} of {job_name}{where} failed: " \
               f"{_first_line(run_message)}"
        event = "run_failed"
    if will_retry:
        text += "; Dagster runs it again once (run retries): nothing to do unless that run fails"
    detail = "\n\n".join([f"step {s}:\n{e.strip()[:1500]}" for s, e in steps]
                         + ([f"failed data tests: {', '.join(failed_checks)}"]
                            if failed_checks else [])
                         + ([run_message.strip()] if run_message and not steps else []))
    return Alert(event, text, month=month, run_id=run_id, detail=detail)


def not_published_alert(month: dt.date) -> Alert:
    key = m.month_key(month)
    return Alert("not_published",
                 f"Observatoire: the {key} rankings are not published yet "
                 f"(due by the {PUBLISH_DEADLINE[0]}nd at {PUBLISH_DEADLINE[1]}:00, Paris)",
                 month=key,
                 detail="No final row for this month in the published warehouse. Look at the "
                        "runs of build_from_landing / monthly_publication in the Dagster UI.")


def publish_due(now: dt.datetime) -> dt.date | None:
    """The month that must be published by `now` (the previous one, from the 2nd 12:00
    Paris), or None before that moment."""
    local = now.astimezone(ZoneInfo(PARIS))
    day, hour = PUBLISH_DEADLINE
    if (local.day, local.hour) < (day, hour):
        return None
    return m.add_months(local.date().replace(day=1), -1)


def collection_short_alert(month: dt.date, plan) -> Alert:
    key = m.month_key(month)
    return Alert("collection_short",
                 f"Observatoire: the {key} collection cannot reach every account before the "
                 f"window ends: {plan.remaining} left, {plan.window_capacity} reachable in "
                 f"{plan.days_left} day(s)",
                 month=key,
                 detail=f"{plan.days_needed} daily run(s) needed at {plan.accounts_per_day} "
                        f"account(s) a day ({plan.calls_per_run} calls a run). Widen "
                        "OBSERVATOIRE_COLLECTION_WINDOW_DAYS or raise the hourly budget.")


def verify_alert(day: dt.date, lines: list[str]) -> Alert:
    return Alert("verify_failed",
                 f"Observatoire: the nightly archive check of {day} found "
                 f"{len(lines)} problem(s): {_first_line(lines[0]) if lines else ''}",
                 detail="\n".join(lines[:50]))


# --- sensors -------------------------------------------------------------------------------

def _data_dir():
    from dagster_project.settings import load_settings

    return load_settings().data_dir


def error_chain(err) -> str:
    """A Dagster error as its causes, innermost first ("FileNotFoundError: …"), no stack:
    Dagster wraps what the step raised in its own "Error occurred while executing op"."""
    parts = []
    while err is not None:
        message = (err.message or "").strip()  # "FileNotFoundError: …" already
        if not message.startswith("dagster._core.errors."):  # Dagster's own wrapper
            parts.append(message)
        err = err.cause
    return "\n".join(reversed(parts))


def failed_check_label(asset: str, check: str, metadata: dict) -> str:
    """'marts/fct_monthly_rankings:unique_rank (3 rows)': a blocking dbt test and how many
    rows failed it (dagster-dbt's `dagster_dbt/failed_row_count`, when given)."""
    rows = metadata.get("dagster_dbt/failed_row_count")
    rows = getattr(rows, "value", rows)
    return f"{asset}:{check}" + (f" ({rows} rows)" if rows is not None else "")


def failed_tests_of(step_failure) -> list[str]:
    """The blocking dbt tests a failed step names in its metadata (FAILED_TESTS): those of
    staging models and reference CSVs, which have no Dagster check."""
    user = getattr(step_failure, "user_failure_data", None)
    tests = ((user.metadata if user is not None else None) or {}).get(FAILED_TESTS)
    tests = getattr(tests, "value", tests)
    return [str(t) for t in tests] if isinstance(tests, list) else []


def _failed_checks(instance, run_id: str) -> list[str]:
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION, limit=10_000).records
    out = []
    for rec in records:
        ev = rec.event_log_entry.dagster_event.event_specific_data
        if not ev.passed and getattr(ev.severity, "value", "ERROR") == "ERROR":
            out.append(failed_check_label(ev.asset_key.to_user_string(), ev.check_name,
                                          ev.metadata or {}))
    return sorted(set(out))


@run_failure_sensor(name="run_failure_alerts", default_status=sensor_status(),
                    minimum_interval_seconds=interval_s("OBSERVATOIRE_ALERT_SENSOR_INTERVAL_S",
                                                        30),
                    description="Alerts on every failed run: its failing step and error, or "
                    "the blocking data tests that failed.")
def run_failure_alerts(context: RunFailureSensorContext):
    run = context.dagster_run
    steps, tests = [], []
    for ev in context.get_step_failure_events():
        steps.append((ev.step_key, error_chain(ev.event_specific_data.error)
                      or ev.message or ""))
        tests += failed_tests_of(ev.event_specific_data)
    alert = run_failure_alert(run.job_name, run.run_id, run.tags.get("dagster/partition"),
                              steps, context.failure_event.message or "",
                              sorted(set(_failed_checks(context.instance, run.run_id) + tests)),
                              will_retry=run.tags.get(WILL_RETRY_TAG) == "true")
    notify(_data_dir(), f"{alert.event}:{run.run_id}", alert)   # never raises


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def published_months(warehouse: Path) -> set[str]:
    """The months ("YYYY-MM") whose rankings are final in the published copy: a month the
    landing sensor built during its collection window is provisional, not published. No
    copy yet is no month; a copy that cannot be read raises (duckdb.Error, OSError)."""
    from dagster_project.warehouse import connect

    if not warehouse.exists():
        return set()
    with connect(warehouse, read_only=True) as con:
        rows = con.execute("select distinct strftime(month, '%Y-%m') "
                           "from marts.fct_monthly_rankings where not is_provisional").fetchall()
    return {r[0] for r in rows}


def published_unreadable_alert(path: Path, since: dt.datetime, error: str) -> Alert:
    return Alert("published_unreadable",
                 f"Observatoire: the published warehouse cannot be read since "
                 f"{since:%Y-%m-%d %H:%M} UTC, so whether last month is published is not "
                 f"known: {_first_line(error)}",
                 detail=f"{path}\n{error}\nThe publication job replaces this file; if no "
                        "run is writing it, rebuild the month (`observatoire run --source landing --from YYYY-MM`).")


def check_published(published_warehouse: Path, data_dir: Path, now: dt.datetime,
                    cursor: dict, landing_dir: Path | None = None) -> tuple[list[str], dict]:
    """The watch's publication part: alert when the month due by `now` has no final rows in
    the published copy; a copy unreadable for UNREADABLE_ALERT_AFTER is alerted too (the
    moment it was first seen unreadable, kept in the cursor, names the occurrence)."""
    due = publish_due(now)
    if due is None:
        return [], cursor
    landing_dir = landing_dir or data_dir / "landing" / "instagram"
    key = m.month_key(due)
    try:
        published = published_months(published_warehouse)
    except Exception as exc:  # noqa: BLE001 — being replaced, damaged: said, never silent
        error = f"{type(exc).__name__}: {exc}"
        since = cursor.get(UNREADABLE) or _iso(now)
        log.warning("published warehouse %s unreadable (since %s): %s", published_warehouse,
                    since, error)
        cursor = {**cursor, UNREADABLE: since}
        started = dt.datetime.fromisoformat(since)
        if now - started >= UNREADABLE_ALERT_AFTER and record(
                data_dir, f"published_unreadable:{since}",
                published_unreadable_alert(published_warehouse, started, error)):
            return ["published warehouse unreadable"], cursor
        return [], cursor
    cursor = {k: v for k, v in cursor.items() if k != UNREADABLE}
    if key in published or not observed_since(published, landing_dir, due):
        return [], cursor
    if record(data_dir, f"not_published:{key}", not_published_alert(due)):
        return [f"{key} not published"], cursor
    return [], cursor


def observed_since(published: set[str], landing_dir: Path, due: dt.date) -> bool:
    """Whether the observatory was running for `due`: it has published a month before, or
    something is landed for `due` or earlier. An observatory installed after that month's
    window has nothing to publish for it, and says so by not alerting."""
    return bool(published) or any(month <= due for month in landed_months(landing_dir))


def _token_check(settings, now: dt.datetime) -> tuple[str, tuple[Alert, str] | None]:
    """The token's state (valid, invalid, unknown…) and, when it is invalid or expires soon,
    (alert, problem)."""
    from dagster_project.collect.graph_api.token import check_token, token_problem

    health = check_token(settings)
    problem = token_problem(health, now)
    if problem is None:
        return health.state, None
    event, suffix, text = problem
    return health.state, (Alert(event, text, detail="Renew the long-lived token "
                                "(INSTAGRAM_ACCESS_TOKEN) and restart observatoire serve."),
                          f"{event}:{suffix}")


def occurrence(open_problems: dict[str, str], state: str, problem: str | None,
               today: str) -> tuple[str | None, dict[str, str]]:
    """(outbox key, problems still open) for one check of the token (pure).

    A problem's key names its occurrence, the day it was first seen ("token_invalid:invalid:
    since-2027-03-04"): the same occurrence seen every day is one alert, and a problem that
    ends (the token checked valid, without problem) and comes back is a new one. A check
    that could not be made (state unknown) neither opens nor closes anything."""
    if problem is None:
        return None, ({} if state == "valid" else open_problems)
    since = open_problems.get(problem, today)
    return f"{problem}:since-{since}", {problem: since}


def check_collection(settings, now: dt.datetime, cursor: dict) -> tuple[list[str], dict]:
    """The watch's collection part: during the window, alert when the nights left cannot
    reach every account."""
    from dagster_project.collect.plan import load_plan_settings, window_days_left
    from dagster_project.collect.window import month_status
    from dagster_project.registry.accounts import read_registry
    from dagster_project.registry.territories import territory_ids

    today = now.astimezone(dt.UTC).date()
    ps = load_plan_settings()
    month = today.replace(day=1)
    if window_days_left(today, ps.window_days) <= 0 or not settings.accounts_file.exists():
        return [], cursor
    accounts, _ = read_registry(settings.accounts_file, territory_ids())
    plan = month_status(accounts, settings, month, today=today, plan_settings=ps).plan
    if not plan.feasible and record(settings.data_dir, f"collection_short:{m.month_key(month)}",
                                    collection_short_alert(month, plan)):
        return [f"{m.month_key(month)} collection short"], cursor
    return [], cursor


def check_token_health(settings, now: dt.datetime, cursor: dict) -> tuple[list[str], dict]:
    """The watch's token part, once a day: alert when the token is invalid or expires soon."""
    today = now.astimezone(dt.UTC).date()
    if cursor.get("token_checked") == today.isoformat():
        return [], cursor
    state, found = _token_check(settings, now)
    key, still_open = occurrence(cursor.get("token_problems", {}), state,
                                 found[1] if found else None, today.isoformat())
    cursor = {**cursor, "token_checked": today.isoformat(), "token_problems": still_open}
    if key is not None and record(settings.data_dir, key, found[0]):
        return [found[0].event], cursor
    return [], cursor


def watch_failed_alert(part: str, error: str) -> Alert:
    return Alert("watch_failed",
                 f"Observatoire: the watch's {part} check fails: {_first_line(error)}; "
                 "the other checks and the delivery of alerts go on",
                 detail=error)


def _watch_part(name: str, part, data_dir: Path, now: dt.datetime,
                cursor: dict) -> tuple[list[str], dict]:
    """Run one part of the watch; a part that raises is logged at every tick and alerted
    once a day, and never keeps the other parts or the delivery from running."""
    try:
        return part(cursor)
    except Exception as exc:
        log.exception("watch: the %s check failed", name)
        error = f"{type(exc).__name__}: {exc}"
        day = now.astimezone(dt.UTC).date().isoformat()
        try:
            record(data_dir, f"watch_failed:{name}:{day}", watch_failed_alert(name, error))
        except Exception:
            log.exception("watch: the failure of the %s check could not be recorded", name)
        return [f"{name} check failed"], cursor


def watch_once(instance, now: dt.datetime, cursor: dict) -> tuple[list[str], dict]:
    """One pass of the watch: each check on its own (one failing does not stop the others),
    then the delivery of every pending alert, always. Returns what it did and the new
    cursor."""
    from dagster_project.settings import load_settings

    settings = load_settings()
    parts = [("publication", lambda c: check_published(settings.published_warehouse,
                                                       settings.data_dir, now, c,
                                                       settings.landing_dir))]
    if settings.access_token:
        parts += [("collection", lambda c: check_collection(settings, now, c)),
                  ("token", lambda c: check_token_health(settings, now, c))]
    done = []
    for name, part in parts:
        found, cursor = _watch_part(name, part, settings.data_dir, now, cursor)
        done += found
    deliver_pending(settings.data_dir)
    return done, cursor


@sensor(name="observatoire_watch", default_status=sensor_status(),
        minimum_interval_seconds=interval_s("OBSERVATOIRE_WATCH_INTERVAL_S", 300),
        description="Every 5 minutes: alerts when last month is not published by the 2nd 12:00 (Paris), when the collection "
        "cannot reach every account before the window ends, when the token is invalid or "
        "expires within 7 days (checked daily); undelivered alerts are retried.")
def observatoire_watch(context: SensorEvaluationContext):
    cursor = json.loads(context.cursor) if context.cursor else {}
    done, cursor = watch_once(context.instance, dt.datetime.now(dt.UTC), cursor)
    context.update_cursor(json.dumps(cursor))
    return SkipReason("; ".join(done) or "all well")


# --- the nightly archive check -------------------------------------------------------------

@op(pool="warehouse", description="verify the landing archive against its manifests and "
    "the warehouse; back it up to OBSERVATOIRE_BACKUP_DIR when set")
def verify_and_backup(context) -> None:
    from dagster_project.archive import backup as archive_backup
    from dagster_project.archive import verify as archive
    from dagster_project.settings import load_settings

    settings = load_settings()
    report = archive.verify(settings.landing_dir,
                            settings.warehouse if settings.warehouse.exists() else None,
                            data_dir=settings.data_dir)
    lines = archive.summary_lines(report)
    context.log.info("verify: %s", "; ".join(lines) or "ok")
    today = dt.datetime.now(ZoneInfo(PARIS)).date()
    if not report.ok:   # an alert, not a failed run: the night's backup still goes on
        notify(settings.data_dir, f"verify_failed:{today}",        # never raises
               verify_alert(today, [str(f) for f in report.errors]))
    dest = os.environ.get("OBSERVATOIRE_BACKUP_DIR")
    if dest:
        result = archive_backup.backup(settings.landing_dir, Path(dest),
                                archive_backup.registry_files(settings.data_dir,
                                                       [settings.accounts_file]))
        context.log.info(f"backup: {len(result.copied)} file(s) copied, {result.skipped} "
                         f"already there → {dest}")
        if not result.ok:
            raise Failure("backup incomplete: " + "; ".join(
                str(f) for f in result.findings[:5]))


@job(description="Every night: verify the archive, then back it up (OBSERVATOIRE_BACKUP_DIR).")
def nightly_archive():
    verify_and_backup()


@schedule(job=nightly_archive, cron_schedule="30 4 * * *", execution_timezone=PARIS,
          default_status=schedule_status(),
          description="Every night at 04:30 (Paris): verify the archive and back it up to "
                      "OBSERVATOIRE_BACKUP_DIR when set.")
def nightly_archive_schedule(context):
    return {}


sensors = [run_failure_alerts, observatoire_watch]
