"""The project's Dagster instance settings, written into DAGSTER_HOME."""
from __future__ import annotations

from pathlib import Path

# Every step that writes the DuckDB file is in pool "warehouse"; one at a time across runs,
# so concurrent runs queue instead of failing on DuckDB's file lock.
DAGSTER_YAML = """\
# Written by Observatoire (dagster_project/defs/instance.py). Edit freely: it is not overwritten.
concurrency:
  pools:
    default_limit: 1
    granularity: op
  runs:
    max_concurrent_runs: 4
telemetry:
  enabled: false
"""


def ensure_instance(dagster_home: Path) -> Path:
    dagster_home = Path(dagster_home)
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    return config
