"""Helpers to run the project CLI in a temporary data folder (imported by tests)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
E2E_FROM, E2E_TO = "2021-06", "2021-08"


def project_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OBSERVATOIRE_", "DAGSTER_", "INSTAGRAM_"))}
    env.update(OBSERVATOIRE_DATA_DIR=str(data_dir), DAGSTER_HOME=str(data_dir / "dagster"),
               DBT_SEND_ANONYMOUS_USAGE_STATS="False", **extra)
    return env


def run_cli(args: list[str], data_dir: Path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "observatoire"), *args], cwd=ROOT, env=project_env(data_dir, **extra),
                          capture_output=True, text=True, timeout=900, check=False)
