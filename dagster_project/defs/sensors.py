"""The landing sensor (off by default: turn it on in the UI)."""
from __future__ import annotations

import json
from pathlib import Path

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SkipReason, sensor

from .. import months as m
from ..landing import iter_month_files
from ..settings import load_settings
from .jobs import build_job, resource_config


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


@sensor(job=build_job, minimum_interval_seconds=60, default_status=DefaultSensorStatus.STOPPED,
        description="Loads and rebuilds a month when new or changed landing files appear in it.")
def landing_files_sensor(context: SensorEvaluationContext):
    state = landing_state(load_settings().landing_dir)
    seen = json.loads(context.cursor) if context.cursor else {}
    changed = sorted(k for k, t in state.items() if seen.get(k, 0) < t)
    if not changed:
        return SkipReason("no new landing files")
    context.update_cursor(json.dumps(state))
    return [RunRequest(run_key=f"landing-{k}-{state[k]}", partition_key=k,
                       run_config=resource_config("landing")) for k in changed]


sensors = [landing_files_sensor]
