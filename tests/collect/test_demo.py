import datetime as dt
import gzip
import hashlib
import json
from collections import Counter

from dagster_project.collect import demo
from dagster_project.registry.accounts import read_registry
from dagster_project.registry.territories import territories, territory_ids
from dagster_project.settings import SEEDS_DIR

NOW = dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC)


def registry():
    real, _ = read_registry(SEEDS_DIR / "instagram_accounts.csv", territory_ids())
    return demo.build_registry(real)


def gunzip_text(path):
    return gzip.decompress(path.read_bytes()).decode("utf-8")


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_deterministic_whatever_the_range(tmp_path):
    accounts = registry()
    demo.simulate(accounts, [dt.date(2021, 7, 1)], tmp_path / "a", now=NOW)
    demo.simulate(accounts, [dt.date(2021, 6, 1), dt.date(2021, 7, 1)], tmp_path / "b", now=NOW)
    assert digest(tmp_path / "a/2021-07/demo.ndjson.gz") == digest(tmp_path / "b/2021-07/demo.ndjson.gz")


def test_registry_coverage_by_category_and_real_handles_kept():
    accounts = registry()
    cat = dict(zip(territories().column("territory_id").to_pylist(),
                   territories().column("category").to_pylist()))
    counts = Counter(cat[a.territory_id] for a in accounts)
    assert counts["region"] == 18 and counts["grande_ville"] == 42 and counts["metropole"] == 22
    assert counts["departement"] >= 90
    assert 200 < counts["petite_ville"] < 0.1 * 34391       # a minority of petites villes
    handles = {a.handle for a in accounts}
    assert {"gersledepartement", "latenareze", "paris_maville"} <= handles
    # the demo gives an account to every territory of the current vintage
    assert len(demo.build_registry([], scale=True)) == len(territories())


def test_lines_are_labelled_demo_and_realistic(tmp_path):
    accounts = registry()
    months = [dt.date(2021, 7, 1), dt.date(2021, 8, 1)]
    result = demo.simulate(accounts, months, tmp_path, now=NOW)
    assert result.snapshots > 2000
    lines = [json.loads(x) for x in gunzip_text(tmp_path / "2021-07/demo.ndjson.gz").splitlines()]
    assert {x["source"] for x in lines} == {"demo"}
    statuses = Counter(x["status"] for x in lines)
    assert statuses["ok"] > 0.95 * len(lines) and statuses["error"] + statuses["not_found"] > 0
    ok = [x for x in lines if x["status"] == "ok"]
    rates = []
    for x in ok:
        bd = x["business_discovery"]
        for p in bd["media"]["data"]:
            if p["like_count"] is not None:        # hidden likes: see the test below
                rates.append((p["like_count"] + p["comments_count"]) / max(bd["followers_count"], 1))
    rates.sort()
    assert 0.01 < rates[len(rates) // 2] < 0.05                  # median per-post engagement
    august = {x["handle"]: x for x in map(json.loads, gunzip_text(tmp_path / "2021-08/demo.ndjson.gz").splitlines())}
    assert august["latenareze"]["status"] == "not_found"          # deleted after July 2021
    assert {x["handle"]: x for x in lines}["latenareze"]["status"] == "ok"


def test_a_few_accounts_hide_their_likes(tmp_path):
    """About 4 % of the accounts hide their like counts by the latest month (all their posts
    then lack like_count); the others show every count; reels carry a view count."""
    accounts = registry()
    demo.simulate(accounts, [dt.date(2021, 6, 1), dt.date(2026, 11, 1)], tmp_path, now=NOW)

    def hidden_share(month):
        ok = [x["business_discovery"] for x in map(json.loads, gunzip_text(
              tmp_path / f"{month}/demo.ndjson.gz").splitlines()) if x["status"] == "ok"]
        posts = [bd["media"]["data"] for bd in ok if bd["media"]["data"]]
        hidden = [ps for ps in posts if any(p["like_count"] is None for p in ps)]
        assert all(all(p["like_count"] is None for p in ps) for ps in hidden)  # all or none
        return len(hidden) / len(posts), [p for ps in posts for p in ps]

    early, _ = hidden_share("2021-06")
    late, media = hidden_share("2026-11")
    assert early < 0.01 and 0.03 <= late <= 0.05, (early, late)
    reels = [p for p in media if p["media_product_type"] == "REELS"]
    assert reels and all(isinstance(p["view_count"], int) for p in reels)
    assert all(p.get("view_count") is None for p in media if p["media_product_type"] != "REELS")
