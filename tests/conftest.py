"""Shared fixtures, built once per test session (not once per xdist worker) and read by
several test files: one small demo pipeline run through Dagster, and the small fixture
warehouse of the exports. A test that writes into one of them takes a copy first."""
from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest
from pipeline_support import E2E_FROM, E2E_TO, run_cli
from shared_data import build_once, copy_data


def pytest_configure(config):
    """Every process a test starts gets the default SIGINT and SIGTERM, whatever launched
    pytest. A shell's background job (CI, nohup, `make test &`) starts with SIGINT ignored;
    Dagster then ignores SIGTERM too (it gives SIGTERM the SIGINT handler), so `observatoire
    run` cannot stop its compute-log `tail -F` children: they outlive the run, still holding
    the test's stderr pipe, and `run_cli` waits for them until pytest-timeout (900 s)."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _demo_run(folder: Path) -> None:
    data = folder / "data"
    proc = run_cli(["run", "--from", E2E_FROM, "--to", E2E_TO, "--data-dir", str(data)], data)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """`observatoire run` over three demo months in a temporary data folder. Read-only: it is
    shared by the tests of both workers (a test that writes uses `demo_copy`)."""
    return build_once(tmp_path_factory, "demo", _demo_run) / "data"


@pytest.fixture
def demo_copy(demo_run, tmp_path) -> Path:
    """A private copy of the demo run's data folder, for a test that writes into it."""
    return copy_data(demo_run, tmp_path / "demo_data")


@pytest.fixture(scope="session")
def fixture_warehouse(tmp_path_factory) -> Path:
    """tests/support/fixture_warehouse.py's default warehouse (two months, 8 categories,
    petite_ville simulated, July final). Read-only: shared by the tests of both workers."""
    from fixture_warehouse import build_warehouse

    return build_once(tmp_path_factory, "fixture_warehouse",
                      lambda folder: build_warehouse(folder / "warehouse.duckdb")
                      ) / "warehouse.duckdb"


@pytest.fixture
def fixture_warehouse_copy(fixture_warehouse, tmp_path) -> Path:
    """A private copy of `fixture_warehouse`, for a test that changes its rows."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(fixture_warehouse, copy)
    return copy
