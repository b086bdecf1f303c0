"""The worked example of docs/methodologie.md cannot drift from the code.

- test_doc_tables_are_the_dbt_unit_tests_numbers (fast): the doc's tables (marked
  `<!-- exemple: … -->`) hold exactly the given and expected rows of the dbt unit tests
  `methodologie_exemple_kpis` and `methodologie_exemple_score`, the hidden-likes variant's
  (`exemple: masque-…`) those of `methodologie_exemple_masque_kpis` / `_score`, and the
  doc's weights are those of seeds/scoring_weights.csv;
- dbt runs those four unit tests through the real models int_account_kpis and
  int_scored_accounts with every other unit test: test_dbt_unit_tests_pass in
  tests/defs/test_pipeline_e2e.py (slow).
Changing the doc, the fixture or the SQL alone makes one of them fail.
"""
from __future__ import annotations

import csv
import re

import pytest
import yaml
from pipeline_support import ROOT

DOC = ROOT / "docs" / "methodologie.md"
FIXTURE = ROOT / "dbt_project" / "models" / "intermediate" / "_methodologie_example.yml"
TESTS = ("methodologie_exemple_kpis", "methodologie_exemple_score",
         "methodologie_exemple_masque_kpis", "methodologie_exemple_masque_score")
# (doc marker prefix, unit tests, extra columns of the data table)
EXAMPLES = [("", "methodologie_exemple", []),
            ("masque-", "methodologie_exemple_masque", ["posts_likes_hidden_30d"])]
HIDDEN = ("masqué", "—")  # how the doc writes a null (hidden engagement, no percentile)

# doc table → the fixture's column for each doc column after (compte, territoire)
DONNEES = ["followers", "follows", "population", "posts_30d", "interactions_30d"]
INDICATEURS = ["engagement_rate", "reach", "posts_per_day", "followers", "follower_ratio"]
SCORE = ["p_engagement_rate", "p_reach", "p_posts_per_day", "p_followers", "p_follower_ratio",
         "score", "rank"]
POIDS = {"taux d'engagement": "engagement_rate", "portée": "reach",
         "publications par jour": "posts_per_day", "abonnés": "followers",
         "ratio abonnés / abonnements": "follower_ratio"}


def number(cell: str) -> float | None:
    """French number: '20 000' → 20000, '0,125' → 0.125; 'masqué' or '—' → None."""
    if cell in HIDDEN:
        return None
    return float(re.sub(r"[\s\u00a0\u202f]", "", cell).replace(",", "."))


def doc_table(text: str, marker: str) -> list[list[str]]:
    """Body rows (cells) of the Markdown table right after `<!-- exemple: marker -->`."""
    after = text.split(f"<!-- exemple: {marker} -->", 1)
    assert len(after) == 2, f"marker {marker!r} not found in {DOC.name}"
    rows = []
    for line in after[1].lstrip("\n").splitlines():
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    assert len(rows) > 2 and set(rows[1][0]) <= {"-", ":"}, f"no table after {marker!r}"
    return rows[2:]


def by_territory(rows: list[list[str]], columns: list[str]) -> dict[str, dict]:
    """{territory_id: {'handle': …, column: number}} from doc rows (compte, territoire, …)."""
    out = {}
    for cells in rows:
        assert len(cells) == 2 + len(columns), cells
        tid = re.search(r"`([a-z_]+:[0-9A-Za-z]+)`", cells[1]).group(1)
        out[tid] = {"handle": cells[0], **{c: number(v) for c, v in zip(columns, cells[2:])}}
    return out


def unit_tests() -> dict[str, dict]:
    declared = yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))["unit_tests"]
    return {t["name"]: t for t in declared if t["name"] in TESTS}


def given(test: dict, ref: str) -> list[dict]:
    return next(g["rows"] for g in test["given"] if g["input"] == f"ref('{ref}')")


def pick(rows: list[dict], columns: list[str]) -> dict[str, dict]:
    return {r["territory_id"]: {c: None if r[c] is None else float(r[c]) for c in columns}
            for r in rows}


def strip_handles(table: dict[str, dict]) -> dict[str, dict]:
    return {t: {k: v for k, v in row.items() if k != "handle"} for t, row in table.items()}


@pytest.mark.parametrize(("marker", "name", "extra"), EXAMPLES)
def test_doc_tables_are_the_dbt_unit_tests_numbers(marker, name, extra):
    text = DOC.read_text(encoding="utf-8")
    tests = unit_tests()
    assert set(tests) == set(TESTS)
    kpis, score = tests[f"{name}_kpis"], tests[f"{name}_score"]
    columns = DONNEES[:4] + extra + DONNEES[4:]

    # step 1: inputs (snapshots, populations) and what dbt counts in the window
    donnees = by_territory(doc_table(text, f"{marker}donnees"), columns)
    snaps = {r["territory_id"]: r for r in given(kpis, "int_reference_snapshots")}
    pops = {r["territory_id"]: r["population"] for r in given(kpis, "int_territories")}
    counted = pick(kpis["expect"]["rows"], ["posts_30d", *extra, "interactions_30d"])
    fixture = {t: {"followers": float(s["followers"]), "follows": float(s["follows"]),
                   "population": float(pops[t]), **counted[t]} for t, s in snaps.items()}
    assert strip_handles(donnees) == fixture
    assert {t: r["handle"] for t, r in donnees.items()} == {t: s["handle"] for t, s in snaps.items()}

    # step 2: the KPIs dbt computes are the doc's, and the scoring test starts from them
    indicateurs = strip_handles(by_territory(doc_table(text, f"{marker}indicateurs"),
                                             INDICATEURS))
    assert indicateurs == pick(kpis["expect"]["rows"], INDICATEURS)
    assert indicateurs == pick(given(score, "int_account_kpis"), INDICATEURS)
    assert {r["category"] for r in given(score, "int_account_kpis")} == {"departement"}

    # steps 3-5: percentiles, score, rank
    scored = strip_handles(by_territory(doc_table(text, f"{marker}score"), SCORE))
    assert scored == pick(score["expect"]["rows"], SCORE)

    # weights: the doc's = the unit test's = the seed's
    poids = {POIDS[name]: number(w) for name, w in doc_table(text, "poids")}
    assert poids == {r["kpi"]: float(r["weight"]) for r in given(score, "stg_reference__scoring_weights")}
    with open(ROOT / "seeds" / "scoring_weights.csv", encoding="utf-8") as fh:
        assert poids == {r["kpi"]: float(r["weight"]) for r in csv.DictReader(fh)}


def test_number_parsing_and_table_reading():
    assert number("20 000") == 20000 and number("0,03125") == 0.03125 and number("1") == 1
    text = "x\n<!-- exemple: t -->\n| a | b |\n|---|---|\n| 1 | 2 |\n\nnext"
    assert doc_table(text, "t") == [["1", "2"]]
    with pytest.raises(AssertionError):
        doc_table(text, "missing")
