"""Reference territories from seeds/ (INSEE COG via @etalab/decoupage-administratif)."""
from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

from dagster_project.settings import SEEDS_DIR


def _rows(name: str, seeds_dir: Path) -> list[dict]:
    with open(Path(seeds_dir) / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def vintage_dirs(seeds_dir: Path = SEEDS_DIR) -> list[tuple[int | None, Path]]:
    """(vintage, folder) of every reference vintage, oldest first; the current one is
    seeds/ itself (vintage None), older ones are seeds/vintages/<year>/."""
    older = sorted((int(p.name), p) for p in (Path(seeds_dir) / "vintages").glob("[0-9][0-9][0-9][0-9]")
                   if p.is_dir())
    return [*older, (None, Path(seeds_dir))]


def _names_of(folder: Path) -> dict[str, str]:
    names = {f"region:{r['code']}": r["name"] for r in _rows("regions.csv", folder)}
    names |= {f"departement:{r['code']}": r["name"] for r in _rows("departements.csv", folder)}
    names |= {f"epci:{r['siren']}": r["name"] for r in _rows("epci.csv", folder)}
    names |= {f"commune:{r['code']}": r["name"] for r in _rows("communes.csv", folder)}
    return names


@lru_cache(maxsize=4)
def territory_names(seeds_dir: Path = SEEDS_DIR) -> dict[str, str]:
    """territory_id → name, for every id of any vintage (the name of its latest vintage)."""
    names: dict[str, str] = {}
    for _, folder in vintage_dirs(seeds_dir):
        names |= _names_of(folder)
    return names


@lru_cache(maxsize=4)
def territory_ids(seeds_dir: Path = SEEDS_DIR) -> frozenset[str]:
    """Every valid territory_id: region:76, departement:2A, epci:<siren>, commune:<insee>,
    existing in at least one vintage of the reference."""
    return frozenset(territory_names(seeds_dir))


def scoring_weights(seeds_dir: Path = SEEDS_DIR) -> list[tuple[str, int, str]]:
    """(kpi, weight, description) of seeds/scoring_weights.csv, in file order (dbt reads
    the same file through its source `reference.scoring_weights`)."""
    return [(r["kpi"], int(r["weight"]), r["description"])
            for r in _rows("scoring_weights.csv", seeds_dir)]


TERRITORIES_SQL = """
with communes as (
    select code, name, code_departement, code_region, try_cast(population as bigint) as population
    from read_csv($communes, all_varchar = true, header = true)
), epci as (
    select siren, name, type, try_cast(population as bigint) as population
    from read_csv($epci, all_varchar = true, header = true)
)
select 'region:' || r.code as territory_id, 'region' as kind, r.name, 'region' as category,
       (select sum(population) from communes c where c.code_region = r.code) as population
from read_csv($regions, all_varchar = true, header = true) r
union all
select 'departement:' || d.code, 'departement', d.name, 'departement',
       (select sum(population) from communes c where c.code_departement = d.code)
from read_csv($departements, all_varchar = true, header = true) d
union all
select 'epci:' || siren, 'epci', name,
       case when type in ('METRO', 'MET69') then 'metropole'
            when type in ('CA', 'CU') then 'communaute_agglomeration'
            else 'communaute_communes' end,
       population
from epci
union all
select 'commune:' || code, 'commune', name,
       case when population >= 100000 then 'grande_ville'
            when population >= 20000 then 'ville_moyenne'
            else 'petite_ville' end,
       population
from communes
order by territory_id
"""


@lru_cache(maxsize=4)
def territories(seeds_dir: Path = SEEDS_DIR):
    """All territories with kind, name, category and population, as an Arrow table.

    Current vintage only (or the vintage folder given). Used by the demo simulator to decide
    who has an account, before dbt runs; the warehouse's `int_territories` is built by dbt
    from the same files with the same rules, for every vintage, and
    tests/dbt/test_vintages.py proves both agree on every vintage.
    """
    import duckdb

    seeds_dir = Path(seeds_dir)
    with duckdb.connect() as con:
        return con.sql(TERRITORIES_SQL, params={
            "communes": str(seeds_dir / "communes.csv"), "epci": str(seeds_dir / "epci.csv"),
            "regions": str(seeds_dir / "regions.csv"),
            "departements": str(seeds_dir / "departements.csv")}).to_arrow_table()
