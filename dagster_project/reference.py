"""Reference territories from seeds/ (INSEE COG via @etalab/decoupage-administratif)."""
from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

from .settings import SEEDS_DIR


def _rows(name: str, seeds_dir: Path) -> list[dict]:
    with open(Path(seeds_dir) / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@lru_cache(maxsize=4)
def territory_ids(seeds_dir: Path = SEEDS_DIR) -> frozenset[str]:
    """Every valid territory_id: region:76, departement:2A, epci:<siren>, commune:<insee>."""
    ids = {f"region:{r['code']}" for r in _rows("regions.csv", seeds_dir)}
    ids |= {f"departement:{r['code']}" for r in _rows("departements.csv", seeds_dir)}
    ids |= {f"epci:{r['siren']}" for r in _rows("epci.csv", seeds_dir)}
    ids |= {f"commune:{r['code']}" for r in _rows("communes.csv", seeds_dir)}
    return frozenset(ids)
