"""Shared fixtures: one small demo pipeline run through Dagster, reused by several tests."""
from __future__ import annotations

from pathlib import Path

import pytest
from pipeline_support import E2E_FROM, E2E_TO, run_cli


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """`observatoire run` over three demo months in a temporary data folder."""
    data = tmp_path_factory.mktemp("demo") / "data"
    proc = run_cli(["run", "--from", E2E_FROM, "--to", E2E_TO, "--data-dir", str(data)], data)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return data
