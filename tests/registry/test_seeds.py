"""Checks on the committed reference seeds (seeds/*.csv). Fast, no network."""

from __future__ import annotations

import csv
import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

SEEDS = Path(__file__).resolve().parents[2] / "seeds"

HEADERS = {
    "regions": ["code", "name"],
    "departements": ["code", "name", "code_region"],
    "epci": ["siren", "name", "type", "population"],
    "communes": ["code", "name", "code_departement", "code_region", "zone", "population",
                 "epci_siren"],
    "categories": ["category", "label", "top_n", "sort_order"],
    "scoring_weights": ["kpi", "weight", "description"],
    "instagram_accounts": ["handle", "territory_id", "source_url", "checked_on", "name"],
}


@cache
def read(name: str) -> tuple[dict[str, str], ...]:
    with (SEEDS / f"{name}.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == HEADERS[name], f"{name}.csv: unexpected header"
        return tuple(reader)


def population(row: dict[str, str]) -> int | None:
    return int(row["population"]) if row["population"] != "" else None


@pytest.mark.parametrize("name", sorted(HEADERS))
def test_file_format(name):
    raw = (SEEDS / f"{name}.csv").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf"), "no BOM"
    assert b"\r" not in raw, "\\n line endings only"
    assert raw.endswith(b"\n")
    raw.decode("utf-8")
    assert read(name), "at least one data row"


def test_counts():
    assert len(read("regions")) == 18
    assert len(read("departements")) == 101
    assert len(read("epci")) == 1255
    assert Counter(r["type"] for r in read("epci")) == {
        "CC": 989, "CA": 230, "CU": 14, "METRO": 21, "MET69": 1,
    }
    communes = read("communes")
    assert len(communes) == 34875
    pops = [population(r) for r in communes]
    assert sum(1 for p in pops if p is not None and p >= 100_000) == 42
    assert sum(1 for p in pops if p is not None and 20_000 <= p < 100_000) == 442
    assert sum(1 for p in pops if not p) == 6  # 0 or missing
    assert sum(1 for r in communes if not r["epci_siren"]) == 4
    assert {r["zone"] for r in communes} == {"metro", "drom"}


@pytest.mark.parametrize("name,key", [
    ("regions", "code"), ("departements", "code"), ("epci", "siren"), ("communes", "code"),
    ("categories", "category"), ("scoring_weights", "kpi"),
])
def test_keys_unique_and_sorted(name, key):
    keys = [r[key] for r in read(name)]
    assert len(keys) == len(set(keys)), f"{name}.csv: duplicate {key}"
    if name not in ("categories", "scoring_weights"):
        assert keys == sorted(keys), f"{name}.csv: not sorted by {key}"


def test_code_formats():
    assert all(re.fullmatch(r"\d{2}", r["code"]) for r in read("regions"))
    assert all(re.fullmatch(r"\d{2}|2[AB]|97\d", r["code"]) for r in read("departements"))
    assert all(re.fullmatch(r"\d{9}", r["siren"]) for r in read("epci"))
    assert all(re.fullmatch(r"\d{5}|2[AB]\d{3}", r["code"]) for r in read("communes"))
    codes = {r["code"] for r in read("communes")}
    assert {"01001", "2A004", "2B033", "97101", "75056"} <= codes
    deps = {r["code"] for r in read("departements")}
    assert {"01", "07", "2A", "2B", "976"} <= deps and "20" not in deps


def test_foreign_keys():
    regions = {r["code"] for r in read("regions")}
    departements = {r["code"]: r["code_region"] for r in read("departements")}
    epci = {r["siren"] for r in read("epci")}
    assert set(departements.values()) <= regions
    for r in read("communes"):
        assert r["code_departement"] in departements, r
        assert r["code_region"] == departements[r["code_departement"]], r
        assert r["epci_siren"] == "" or r["epci_siren"] in epci, r
    # every EPCI has at least one member commune
    assert {r["epci_siren"] for r in read("communes")} - {""} == epci


def test_populations_are_integers():
    assert all(int(r["population"]) > 0 for r in read("epci"))
    assert all(r["population"] == "" or int(r["population"]) >= 0 for r in read("communes"))


def test_categories():
    rows = read("categories")
    assert [r["category"] for r in rows] == [
        "region", "departement", "metropole", "communaute_agglomeration",
        "communaute_communes", "grande_ville", "ville_moyenne", "petite_ville",
    ]
    assert [int(r["sort_order"]) for r in rows] == list(range(1, 9))
    assert {r["category"] for r in rows if int(r["top_n"]) == 20} == {"grande_ville"}
    assert all(int(r["top_n"]) == 50 for r in rows if r["category"] != "grande_ville")
    labels = {r["category"]: r["label"] for r in rows}
    assert labels["communaute_agglomeration"] == "Communautés d'agglomération et urbaines"


def test_scoring_weights():
    weights = {r["kpi"]: int(r["weight"]) for r in read("scoring_weights")}
    assert weights == {
        "engagement_rate": 5, "reach": 4, "posts_per_day": 3, "followers": 2, "follower_ratio": 1,
    }
    assert all(r["description"].strip() for r in read("scoring_weights"))


def test_instagram_accounts_point_to_existing_territories():
    names = {f"departement:{r['code']}": r["name"] for r in read("departements")}
    names.update({f"epci:{r['siren']}": r["name"] for r in read("epci")})
    rows = read("instagram_accounts")
    assert len(rows) == 17
    for r in rows:
        assert r["territory_id"] in names, f"unknown territory_id {r['territory_id']!r}"
        assert r["name"] == names[r["territory_id"]], r
        assert re.fullmatch(r"[a-z0-9._]{1,30}", r["handle"]), r
        assert r["source_url"] == f"https://www.instagram.com/{r['handle']}/", r
        assert r["checked_on"] == "2021-07-31", r
    assert len({r["handle"] for r in rows}) == len(rows)
    assert len({r["territory_id"] for r in rows}) == len(rows)
    assert "departement:74" not in {r["territory_id"] for r in rows}  # handle unknown
