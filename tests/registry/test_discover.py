"""`observatoire accounts discover` against a fake SPARQL endpoint on 127.0.0.1."""
from __future__ import annotations

import csv
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_sparql import FakeSparql

from dagster_project.registry.accounts import Account, normalize_handle
from dagster_project.registry.discover import classify, has_ended, item_url
from dagster_project.registry.territories import territory_ids, territory_names
from dagster_project.registry.wikidata import Binding, fetch_all, make_session, query_for

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "seeds" / "instagram_accounts.csv"


@pytest.mark.parametrize("typed", [
    "@Toulouse", " toulouse ", "TOULOUSE", "https://www.instagram.com/toulouse/",
    "http://instagram.com/toulouse", "www.instagram.com/toulouse", "instagram.com/toulouse/",
    "https://instagram.com/Toulouse?hl=fr", "  @toulouse\t"])
def test_every_typed_form_normalises_to_the_handle(typed):
    assert normalize_handle(typed) == "toulouse"


def test_not_a_handle_stays_invalid():
    assert normalize_handle("https://www.instagram.com/p/abc/def") != "abc"
    assert normalize_handle("haut Savoie le Departement") == "haut savoie le departement"


def test_queries_one_per_kind_with_the_contract_variables():
    for kind, prop in (("region", "P2585"), ("departement", "P2586"), ("commune", "P374"),
                       ("epci", "P1616")):
        q = query_for(kind)
        assert q.startswith("SELECT ?item ?code ?username ?end WHERE")
        assert f"wdt:{prop} ?code" in q and "wikibase:BestRank" in q and "pq:P582" in q
    assert "FILTER NOT EXISTS" in query_for("epci") and "FILTER NOT EXISTS" not in query_for(
        "commune")


def test_ended_and_item_url():
    today = dt.date(2026, 11, 29)
    assert has_ended("2020-01-01T00:00:00Z", today)
    assert not has_ended("2030-01-01T00:00:00Z", today)
    assert not has_ended("", today)
    assert item_url("http://www.wikidata.org/entity/Q90") == "https://www.wikidata.org/wiki/Q90"


def fake_endpoint() -> FakeSparql:
    fake = FakeSparql()
    fake.add("region", "Q18678082", "76", "@OccitanieRegion")                 # new
    fake.add("region", "Q18677767", "32", "hautsdefrance")                    # one handle,
    fake.add("departement", "Q12661", "59", "https://www.instagram.com/hautsdefrance/")  # two
    fake.add("region", "Q18314", "72", "aquitaine_region")                    # not a territory
    fake.add("departement", "Q12517", "32", "gersledepartement")              # known
    fake.add("departement", "Q12517", "32", "GersLeDepartement")              # duplicate
    fake.add("departement", "Q12559", "38", "isere_officiel")                 # registry: other
    fake.add("departement", "Q12751", "74", "haut Savoie le Departement")     # invalid handle
    fake.add("departement", "Q1000", "20", "corse_dept")                      # no such code
    fake.add("commune", "Q7880", "31555", "https://www.instagram.com/toulouse/")  # new
    fake.add("commune", "Q7880", "31555", "www.instagram.com/toulouse")       # duplicate
    fake.add("commune", "Q90", "75056", "paris_maville")                      # registry: dept 75
    fake.add("commune", "Q90", "75056", "oldparis", end="2019-05-01T00:00:00Z")  # ended
    fake.add("commune", "Q1479", "33063", "bordeaux")                         # two handles
    fake.add("commune", "Q1479", "33063", " @BordeauxMaVille ")               # for one city
    fake.add("commune", "Q1479", "33063", "bordeaux_next", end="2099-01-01T00:00:00Z")
    fake.add("epci", "Q2986", "243100518", "toulousemetropole")               # new
    fake.add("epci", "Q3000", "200067478", "cc_comtal_lot_truyere")           # known
    return fake


def read(path: Path) -> dict[tuple[str, str], dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["handle", "territory_id", "territory_name", "status",
                             "source_url", "detail"]
    pairs = {(r["handle"], r["territory_id"]): r for r in rows}
    assert len(pairs) == len(rows), "one row per (handle, territory_id)"
    return pairs


def test_discover_command_end_to_end(tmp_path):
    out = tmp_path / "candidates.csv"
    before = REGISTRY.read_bytes()
    fake = fake_endpoint()
    fake.fail_first = [429, 503]     # the first query is throttled, then the server is busy
    with fake:
        env = {**os.environ, "WIKIDATA_SPARQL_URL": fake.url,
               "OBSERVATOIRE_DATA_DIR": str(tmp_path / "data")}
        proc = subprocess.run([sys.executable, "-m", "dagster_project.cli", "accounts",
                               "discover", "--out", str(out)], env=env, capture_output=True,
                              text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert REGISTRY.read_bytes() == before, "discover never changes the registry"
    # one query per kind (+ the two refused attempts), a descriptive User-Agent, JSON results
    assert sorted(r["kind"] for r in fake.requests if r["status"] == 200) == [
        "commune", "departement", "epci", "region"]
    assert [r["status"] for r in fake.requests[:3]] == [429, 503, 200]
    assert all(r["user_agent"].startswith("observatoire-registry-discovery/")
               for r in fake.requests)
    assert all("sparql-results+json" in r["accept"] for r in fake.requests)

    rows = read(out)
    status = {k: v["status"] for k, v in rows.items()}
    assert status == {
        ("occitanieregion", "region:76"): "new",
        ("hautsdefrance", "region:32"): "conflict",
        ("hautsdefrance", "departement:59"): "conflict",
        ("aquitaine_region", "region:72"): "invalid",
        ("gersledepartement", "departement:32"): "known",
        ("isere_officiel", "departement:38"): "conflict",
        ("haut savoie le departement", "departement:74"): "invalid",
        ("corse_dept", "departement:20"): "invalid",
        ("toulouse", "commune:31555"): "new",
        ("paris_maville", "commune:75056"): "conflict",
        ("bordeaux", "commune:33063"): "conflict",
        ("bordeauxmaville", "commune:33063"): "conflict",
        ("bordeaux_next", "commune:33063"): "conflict",
        ("toulousemetropole", "epci:243100518"): "new",
        ("cc_comtal_lot_truyere", "epci:200067478"): "known",
    }
    assert "oldparis" not in {h for h, _ in rows}, "an ended username is ignored"
    # details a person can act on
    assert "departement:59" in rows[("hautsdefrance", "region:32")]["detail"]
    assert "@isere.le.departement" in rows[("isere_officiel", "departement:38")]["detail"]
    assert "departement:75" in rows[("paris_maville", "commune:75056")]["detail"]
    assert "@bordeauxmaville" in rows[("bordeaux", "commune:33063")]["detail"]
    assert "not a valid Instagram handle" in rows[("haut savoie le departement",
                                                   "departement:74")]["detail"]
    assert "not a département of any vintage" in rows[("corse_dept", "departement:20")]["detail"]
    assert "not a région" in rows[("aquitaine_region", "region:72")]["detail"]
    new = rows[("toulouse", "commune:31555")]
    assert new["territory_name"] == "Toulouse" and new["detail"] == ""
    assert new["source_url"] == "https://www.wikidata.org/wiki/Q7880"
    assert rows[("toulousemetropole", "epci:243100518")]["territory_name"] == "Toulouse Métropole"
    assert "candidates: new 3, known 2, conflict 7, invalid 3" in " ".join(proc.stderr.split())


def test_discover_reports_an_endpoint_that_keeps_failing(tmp_path):
    fake = FakeSparql()
    fake.fail_first = [503] * 20
    with fake:
        session = make_session(retries=2, backoff_s=0)
        with pytest.raises(RuntimeError, match="HTTP 503"):
            fetch_all(fake.url, session=session)
    assert len(fake.requests) == 3  # first try + 2 retries, then a clear error


def test_classify_is_pure_and_collapses_duplicates():
    b = [Binding("commune", "http://www.wikidata.org/entity/Q1", "31555", "@Toulouse", ""),
         Binding("commune", "http://www.wikidata.org/entity/Q2", "31555", "toulouse", "")]
    out = classify(b, [Account("gersledepartement", "departement:32")], territory_ids(),
                   territory_names())
    assert [(c.handle, c.status, c.source_url) for c in out] == [
        ("toulouse", "new", "https://www.wikidata.org/wiki/Q1")]
