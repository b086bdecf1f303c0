"""Reliability tests (bad input, idempotence, faults, security) for the loader and friends.

The helpers live in `rel_helpers.py`; the fake Graph API and the exports fixture builder are
reused from their own test folders, which are put on sys.path here.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for folder in (HERE, HERE.parent / "graph_api", HERE.parent / "exports"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


import dataclasses
import datetime as dt

import pytest

from dagster_project.loader import LoadResult, load_months


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
