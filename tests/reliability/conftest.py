"""Reliability tests (bad input, idempotence, faults, security) for the loader and friends.

The helpers live in `tests/support/rel_helpers.py` (tests/support is on the test path).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from dagster_project.load.snapshots import LoadResult, load_months


@dataclasses.dataclass
class Landing:
    """A landing root and a warehouse file under tmp_path."""
    root: Path
    db: Path

    def load(self, months: list[dt.date] | None = None, now: dt.datetime | None = None,
             db: Path | None = None) -> LoadResult:
        from rel_helpers import JULY, NOW
        return load_months(db or self.db, self.root, months or [JULY], now=now or NOW)


@pytest.fixture
def landing(tmp_path: Path) -> Landing:
    return Landing(tmp_path / "data" / "landing" / "instagram", tmp_path / "data" / "warehouse.duckdb")
