"""The schedules (on under `observatoire serve`; elsewhere off until turned on in the UI)."""
from __future__ import annotations

from dagster import (
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from dagster_project import months as m
from dagster_project.archive.landing import month_files
from dagster_project.collect.plan import (
    DEFAULT_WINDOW_DAYS,
    first_cron_day,
    load_plan_settings,
    window_days_left,
)
from dagster_project.defs.automation import nightly_archive_schedule, schedule_status
from dagster_project.defs.jobs import build_job, collect_job, resource_config

PARIS = "Europe/Paris"


COLLECTION_HOUR = 2  # 02:00 Paris = 00:00/01:00 UTC: a run of ≤ 20 h ends before the next


def _window_days() -> int:
    try:
        return load_plan_settings().window_days
    except ValueError:
        return DEFAULT_WINDOW_DAYS  # the run itself then fails with the message


@schedule(job=collect_job,
          cron_schedule=f"0 {COLLECTION_HOUR} {first_cron_day(_window_days())}-31 * *",
          execution_timezone=PARIS, default_status=schedule_status(),
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
                      run_config=resource_config("graph_api"),
                      tags={"observatoire/collection_day": f"{window - left + 1}/{window}"})


@schedule(job=build_job, cron_schedule="0 6 1 * *", execution_timezone=PARIS,
          default_status=schedule_status(),
          description="On the 1st at 06:00 (Paris), build, publish and export the month just finished.")
def monthly_publication(context: ScheduleEvaluationContext):
    from dagster_project.settings import load_settings

    month = m.add_months(context.scheduled_execution_time.date().replace(day=1), -1)
    if not month_files(load_settings().landing_dir, month):
        # an observatory installed after that month's window: nothing to build (the build
        # would fail at the site step); a month whose collection failed is alerted by the
        # watch (not published) and by the collection check
        return SkipReason(f"nothing landed for {m.month_key(month)}: no rankings to build")
    return RunRequest(run_key=f"publish-{month.isoformat()}", partition_key=month.isoformat(),
                      run_config=resource_config("landing"))


schedules = [graph_api_collection, monthly_publication, nightly_archive_schedule]
