"""The landing sensor (on under `observatoire serve`; elsewhere off until turned on in the UI).

On its first tick (no cursor yet: the first start of serve, or a fresh DAGSTER_HOME) it takes
the landing archive as it stands for built and launches nothing: asking for one run per
landed month would queue a hundred runs on a full archive. An archive that was never built
is built once with `observatoire run --source landing --from … --to …` (one run over the
range); from then on, a new or changed file in a month launches that month's build.
"""
from __future__ import annotations

import json
from pathlib import Path

from dagster import RunRequest, SensorEvaluationContext, SkipReason, sensor

from dagster_project import months as m
from dagster_project.archive.landing import iter_month_files
from dagster_project.defs.automation import interval_s, sensor_status
from dagster_project.defs.automation import sensors as automation_sensors
from dagster_project.defs.jobs import build_job, resource_config
from dagster_project.settings import load_settings


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
        mtimes = [p.stat().st_mtime for p in iter_month_files(folder)]
        if mtimes:
            state[month.isoformat()] = max(mtimes)
    return state


@sensor(job=build_job,
        minimum_interval_seconds=interval_s("OBSERVATOIRE_LANDING_SENSOR_INTERVAL_S", 60),
        default_status=sensor_status(),
        description="Loads and rebuilds a month when new or changed landing files appear in it "
                    "(its first tick takes the archive as it stands for built).")
def landing_files_sensor(context: SensorEvaluationContext):
    state = landing_state(load_settings().landing_dir)
    if context.cursor is None:
        context.update_cursor(json.dumps(state))
        return SkipReason(f"first tick: {len(state)} landed month(s) taken as built; new or "
                          "changed files from now on launch their month's build")
    seen = json.loads(context.cursor)
    changed = sorted(k for k, t in state.items() if seen.get(k, 0) < t)
    if not changed:
        return SkipReason("no new landing files")
    context.update_cursor(json.dumps(state))
    return [RunRequest(run_key=f"landing-{k}-{state[k]}", partition_key=k,
                       run_config=resource_config("landing")) for k in changed]


sensors = [landing_files_sensor, *automation_sensors]
