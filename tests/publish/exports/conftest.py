"""Fixtures for the journalist exports: small warehouses built once per test session."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fixture_warehouse import MONTHS, build_warehouse

JULY = MONTHS[-1]
JUNE = MONTHS[0]


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two months, 8 categories, petite_ville simulated (demo), July final."""
    return build_warehouse(tmp_path_factory.mktemp("wh") / "warehouse.duckdb")


@pytest.fixture(scope="session")
def real_provisional_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same territories, no demo row, July marked provisional."""
    return build_warehouse(tmp_path_factory.mktemp("wh_prov") / "warehouse.duckdb",
                           demo_categories=(), provisional_months=(JULY,))


@pytest.fixture(scope="session")
def july() -> dt.date:
    return JULY


@pytest.fixture(scope="session")
def june() -> dt.date:
    return JUNE
