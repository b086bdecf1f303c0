"""Schedules and the landing sensor (all off by default: turn them on in the UI)."""
from __future__ import annotations

from pathlib import Path

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)

from . import months as m
from .collection_plan import (
    DEFAULT_WINDOW_DAYS,
    first_cron_day,
    load_plan_settings,
    window_days_left,
)
from .settings import load_settings

PARIS = "Europe/Paris"

COLLECT = AssetSelection.assets(AssetKey(["landing", "instagram_snapshots"]))

monthly_pipeline = define_asset_job(
    "monthly_pipeline", selection=AssetSelection.all(),
    description="Collect → load → dbt build → publish → export, over one month or a range.")

collect_job = define_asset_job(
    "collect_current_month", selection=COLLECT,
    description="Snapshot every registered account from the Graph API into the current month.")

build_job = define_asset_job(
    "build_from_landing",
    selection=AssetSelection.all() - COLLECT,
    description="Load what is landed for a month, rebuild its rankings, publish and export.")


def _resource_config(source: str) -> dict:
    return {"resources": {"observatoire": {"config": {
        "data_dir": str(load_settings().data_dir), "source": source}}}}


COLLECTION_HOUR = 2  # 02:00 Paris = 00:00/01:00 UTC: a run of ≤ 20 h ends before the next


def _window_days() -> int:
    try:
        return load_plan_settings().window_days
    except ValueError:
        return DEFAULT_WINDOW_DAYS  # the run itself then fails with the message


@schedule(job=collect_job,
          cron_schedule=f"0 {COLLECTION_HOUR} {first_cron_day(_window_days())}-31 * *",
          execution_timezone=PARIS, default_status=DefaultScheduleStatus.STOPPED,
          description="Every day of the collection window (the last OBSERVATOIRE_COLLECTION_"
          "WINDOW_DAYS days of the month, default 7) at 02:00 (Paris), collect the current month "
          "from the Graph API: each run resumes where the last stopped (accounts already "
          "collected this month are skipped), keeps below Meta's hourly budget and stops "
          "before it is exhausted. `observatoire status` shows where the month stands.")
def graph_api_collection(context: ScheduleEvaluationContext):
    window = _window_days()
    day = context.scheduled_execution_time.date()
    left = window_days_left(day, window)
    if left == 0:
        return SkipReason(f"{day} is before the collection window (the last {window} days of "
                          "the month)")
    month = day.replace(day=1)
    return RunRequest(run_key=f"collect-{day.isoformat()}", partition_key=month.isoformat(),
                      run_config=_resource_config("graph_api"),
                      tags={"observatoire/collection_day": f"{window - left + 1}/{window}"})


@schedule(job=build_job, cron_schedule="0 6 1 * *", execution_timezone=PARIS,
          default_status=DefaultScheduleStatus.STOPPED,
          description="On the 1st at 06:00 (Paris), build, publish and export the month just finished.")
def monthly_publication(context: ScheduleEvaluationContext):
    month = m.add_months(context.scheduled_execution_time.date().replace(day=1), -1)
    return RunRequest(run_key=f"publish-{month.isoformat()}", partition_key=month.isoformat(),
                      run_config=_resource_config("landing"))


def landing_state(landing_dir: Path) -> dict[str, float]:
    """Latest modification time of each month folder's landing files."""
    state: dict[str, float] = {}
    if not landing_dir.is_dir():
        return state
    for folder in landing_dir.iterdir():
        try:
            month = m.parse_month(folder.name)
        except ValueError:
            continue
        mtimes = [p.stat().st_mtime for p in folder.iterdir()
                  if p.name.endswith((".ndjson", ".ndjson.gz"))]
        if mtimes:
            state[month.isoformat()] = max(mtimes)
    return state


@sensor(job=build_job, minimum_interval_seconds=60, default_status=DefaultSensorStatus.STOPPED,
        description="Loads and rebuilds a month when new or changed landing files appear in it.")
def landing_files_sensor(context: SensorEvaluationContext):
    import json

    state = landing_state(load_settings().landing_dir)
    seen = json.loads(context.cursor) if context.cursor else {}
    changed = sorted(k for k, t in state.items() if seen.get(k, 0) < t)
    if not changed:
        return SkipReason("no new landing files")
    context.update_cursor(json.dumps(state))
    return [RunRequest(run_key=f"landing-{k}-{state[k]}", partition_key=k,
                       run_config=_resource_config("landing")) for k in changed]


schedules = [graph_api_collection, monthly_publication]
sensors = [landing_files_sensor]
jobs = [monthly_pipeline, collect_job, build_job]
