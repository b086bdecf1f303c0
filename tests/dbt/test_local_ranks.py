"""Local ranks (département, région) on the demo, recomputed in Python from the national
ranking and the reference territories."""
from collections import defaultdict

import duckdb
import pytest

pytestmark = pytest.mark.slow


def rows(data, sql):
    with duckdb.connect(str(data / "published" / "warehouse.duckdb"), read_only=True) as con:
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def test_local_ranks_are_the_national_order_within_each_area(demo_run):
    ranked = rows(demo_run, """select month, category, rank, territory_id, code_departement,
                                      code_region, rank_in_departement, rank_in_region,
                                      rank_in_departement_change, rank_in_region_change,
                                      departement_name, region_name
                               from marts.fct_monthly_rankings order by month, category, rank""")
    assert ranked
    expected: dict[tuple, dict[str, int]] = {"departement": {}, "region": {}}
    seen: dict[tuple, int] = defaultdict(int)
    for r in ranked:                       # national order: rank ascending
        for kind in ("departement", "region"):
            code = r[f"code_{kind}"]
            applies = code is not None and r["category"] not in (
                ("region", "departement") if kind == "departement" else ("region",))
            if applies:
                key = (r["month"], r["category"], kind, code)
                seen[key] += 1
                expected[kind][(r["month"], r["territory_id"])] = seen[key]
    for r in ranked:
        for kind in ("departement", "region"):
            assert r[f"rank_in_{kind}"] == expected[kind].get((r["month"], r["territory_id"])), r
    # the change is last month's local rank minus this month's, where both exist in one area
    by_key = {(r["month"], r["territory_id"]): r for r in ranked}
    moved = 0
    for r in ranked:
        prev_month = (r["month"].replace(day=1) - __import__("datetime").timedelta(days=1)
                      ).replace(day=1)
        prev = by_key.get((prev_month, r["territory_id"]))
        for kind in ("departement", "region"):
            change = r[f"rank_in_{kind}_change"]
            if change is not None:
                assert prev is not None and prev[f"code_{kind}"] == r[f"code_{kind}"]
                assert change == prev[f"rank_in_{kind}"] - r[f"rank_in_{kind}"]
                moved += 1
    assert moved > 0
    gers = [r for r in ranked if r["code_departement"] == "32"]
    assert gers and {r["departement_name"] for r in gers} == {"Gers"}
    assert {r["region_name"] for r in gers} == {"Occitanie"}


def test_an_epci_is_placed_by_its_most_populous_commune(demo_run):
    got = rows(demo_run, """
        with members as (
            select c.vintage, c.epci_siren, c.code_departement, c.code_region,
                   row_number() over (partition by c.vintage, c.epci_siren
                       order by c.population desc nulls last, c.code) as n
            from marts.dim_territories c
            where c.category in ('grande_ville', 'ville_moyenne', 'petite_ville', 'commune')
              and c.epci_siren is not null
        )
        select r.month, r.territory_id, r.code_departement, r.code_region,
               m.code_departement as expected_departement, m.code_region as expected_region
        from marts.fct_monthly_rankings r
        join members m on m.vintage = r.vintage and m.n = 1
             and 'epci:' || m.epci_siren = r.territory_id
        where r.category in ('metropole', 'communaute_agglomeration', 'communaute_communes')""")
    assert got
    wrong = [g for g in got if (g["code_departement"], g["code_region"])
             != (g["expected_departement"], g["expected_region"])]
    assert wrong == []
