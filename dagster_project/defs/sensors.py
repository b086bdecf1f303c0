"""The landing sensor (on under `observatoire serve`; elsewhere off until turned on in the UI).

It rebuilds a month when the month's SET of landing files changes: a file added, removed,
renamed or rewritten (another size or modification time, to the nanosecond), whatever the
files' times, so a file copied in with its original time (`cp -p`, `rsync -a`, `tar x`, a
restore) is seen like any other. `MANIFEST.tsv` is left out: the load itself adds the lines
of files placed by hand, which would launch a second build of every such month; the landing
files it lists are what counts.

The cursor holds one fingerprint per month, `{"YYYY-MM-01": sha256 hex}`: the SHA-256 of the
sorted (name, size, mtime_ns) list of its files, never the list itself. A file that vanishes
between the listing and its stat() is left out (the next tick sees the folder as it is then).
A month whose folder is emptied or removed launches nothing (its warehouse month is kept; an
unmounted archive must not empty the warehouse) and keeps its fingerprint, so the same files
coming back launch nothing either; rebuild such a month by hand with `observatoire run`.

On its first tick (no cursor yet: the first start of serve, or a fresh DAGSTER_HOME) it takes
the landing archive as it stands for built and launches nothing: asking for one run per
landed month would queue a hundred runs on a full archive. An archive that was never built
is built once with `observatoire run --source landing --from … --to …` (one run over the
range); from then on, a change to a month's files launches that month's build.

A cursor of the earlier format (month → newest modification time, a float) is converted on
the first tick after the upgrade: a month whose newest time did not grow takes its
fingerprint without a run; one whose newest time grew (the old sensor would have launched
it) and a month not in the cursor are built, as before.

A run's key is `landing-<month>-<fingerprint>-<ctime>`, the ctime being the newest
status-change time of the folder and its files: a retried tick asks for the same run, and a
month that comes back to an earlier set (a wrongly placed file removed) is built again
instead of being taken by Dagster for a duplicate of that earlier run.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from dagster import RunRequest, SensorEvaluationContext, SkipReason, sensor

from dagster_project import months as m
from dagster_project.archive.landing import iter_month_files
from dagster_project.defs.automation import interval_s, sensor_status
from dagster_project.defs.automation import sensors as automation_sensors
from dagster_project.defs.jobs import build_job, resource_config
from dagster_project.settings import load_settings


@dataclass(frozen=True)
class MonthFiles:
    """What the sensor knows of a month folder's landing files."""
    fingerprint: str   # sha256 of the sorted (name, size, mtime_ns) list: what the cursor keeps
    newest: float      # newest st_mtime: what a cursor of the earlier format compared
    changed_ns: int    # newest st_ctime_ns of the folder and its files: for the run key


def month_files_state(folder: Path) -> MonthFiles | None:
    """The month folder's landing files as they are now; None when it has none (or is gone).
    A file that vanishes between the listing and its stat() is left out."""
    try:
        files = iter_month_files(folder)
        changed_ns = folder.stat().st_ctime_ns
    except FileNotFoundError:
        return None
    rows: list[tuple[str, int, int]] = []
    newest = 0.0
    for path in files:
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        rows.append((path.name, st.st_size, st.st_mtime_ns))
        newest = max(newest, st.st_mtime)
        changed_ns = max(changed_ns, st.st_ctime_ns)
    if not rows:
        return None
    digest = hashlib.sha256(json.dumps(sorted(rows), separators=(",", ":")).encode())
    return MonthFiles(digest.hexdigest(), newest, changed_ns)


def landing_months(landing_dir: Path) -> dict[str, MonthFiles]:
    """Each landed month ("YYYY-MM-01") with its files' state; folders that are not months
    and months without landing files are left out."""
    state: dict[str, MonthFiles] = {}
    try:
        folders = list(landing_dir.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return state
    for folder in folders:
        try:
            month = m.parse_month(folder.name)
        except ValueError:
            continue
        files = month_files_state(folder)
        if files is not None:
            state[month.isoformat()] = files
    return state


def landing_state(landing_dir: Path) -> dict[str, str]:
    """The fingerprint of each landed month's files (the sensor's cursor)."""
    return {k: v.fingerprint for k, v in landing_months(landing_dir).items()}


def _changed(seen: str | float | None, now: MonthFiles) -> bool:
    if isinstance(seen, str):
        return seen != now.fingerprint
    if isinstance(seen, int | float) and not isinstance(seen, bool):  # the earlier format
        return now.newest > seen
    return True                                                       # a month not seen yet


@sensor(job=build_job,
        minimum_interval_seconds=interval_s("OBSERVATOIRE_LANDING_SENSOR_INTERVAL_S", 60),
        default_status=sensor_status(),
        description="Loads and rebuilds a month when its set of landing files changes (a file "
                    "added, removed or rewritten, whatever its time; its first tick takes the "
                    "archive as it stands for built).")
def landing_files_sensor(context: SensorEvaluationContext):
    state = landing_months(load_settings().landing_dir)
    fingerprints = {k: v.fingerprint for k, v in state.items()}
    if context.cursor is None:
        context.update_cursor(json.dumps(fingerprints))
        return SkipReason(f"first tick: {len(state)} landed month(s) taken as built; a change "
                          "to a month's files from now on launches its build")
    seen = json.loads(context.cursor)
    changed = sorted(k for k, v in state.items() if _changed(seen.get(k), v))
    cursor = {**seen, **fingerprints}    # months gone from the landing keep their fingerprint
    if cursor != seen:
        context.update_cursor(json.dumps(cursor))
    if not changed:
        return SkipReason("no new landing files")
    return [RunRequest(run_key=f"landing-{k}-{state[k].fingerprint}-{state[k].changed_ns}",
                       partition_key=k, run_config=resource_config("landing"))
            for k in changed]


sensors = [landing_files_sensor, *automation_sensors]
