"""The project's Dagster instance settings, written into DAGSTER_HOME."""
from __future__ import annotations

from pathlib import Path

# Every step that writes the DuckDB file is in pool "warehouse"; one at a time across runs,
# so concurrent runs queue instead of failing on DuckDB's file lock. Runs launched by the
# daemon (`observatoire serve`) go through the run queue (at most 4 at once); run monitoring
# fails a run stuck starting or cancelling for 3 minutes or running for more than 24 hours
# (the longest run, a night's collection, lasts at most 20 h; the default run launcher cannot
# resume a run, hence no resume attempt); a run that crashed (not one whose step failed) is
# retried once; tick history is kept bounded.
DAGSTER_YAML = """\
# Written by Observatoire (dagster_project/defs/instance.py). Edit freely: it is not overwritten.
concurrency:
  pools:
    default_limit: 1
    granularity: op
  runs:
    max_concurrent_runs: 4
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  max_runtime_seconds: 86400
  max_resume_run_attempts: 0
  poll_interval_seconds: 60
run_retries:
  enabled: true
  max_retries: 1
  retry_on_asset_or_op_failure: false
retention:
  schedule:
    purge_after_days: 90
  sensor:
    purge_after_days:
      skipped: 7
      failure: 90
      success: 90
telemetry:
  enabled: false
"""

# What earlier versions wrote: such a file, never edited, is brought up to date.
_EARLIER = ["""\
# Written by Observatoire (dagster_project/defs/instance.py). Edit freely: it is not overwritten.
concurrency:
  pools:
    default_limit: 1
    granularity: op
  runs:
    max_concurrent_runs: 4
telemetry:
  enabled: false
"""]


def ensure_instance(dagster_home: Path) -> Path:
    """Write DAGSTER_HOME/dagster.yaml unless the operator has their own."""
    dagster_home = Path(dagster_home)
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists() or config.read_text() in _EARLIER:
        config.write_text(DAGSTER_YAML)
    return config
