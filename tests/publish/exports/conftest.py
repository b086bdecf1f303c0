"""Fixtures for the journalist exports: small warehouses built once per test session
(shared by both xdist workers; the exports only read them)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fixture_warehouse import MONTHS, build_warehouse
from shared_data import build_once

JULY = MONTHS[-1]
JUNE = MONTHS[0]


@pytest.fixture(scope="session")
def warehouse(fixture_warehouse: Path) -> Path:
    """Two months, 8 categories, petite_ville simulated (demo), July final."""
    return fixture_warehouse


@pytest.fixture(scope="session")
def real_provisional_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same territories, no demo row, July marked provisional."""
    return build_once(tmp_path_factory, "fixture_warehouse_real_provisional",
                      lambda folder: build_warehouse(folder / "warehouse.duckdb", demo_categories=(),
                                                     provisional_months=(JULY,))
                      ) / "warehouse.duckdb"


@pytest.fixture(scope="session")
def july() -> dt.date:
    return JULY


@pytest.fixture(scope="session")
def june() -> dt.date:
    return JUNE
