"""docs/landing.schema.json against what the sources write and what the loader rejects.

- every line the demo simulator and the Graph API collector (against the loopback fake in
  tests/support/) write is valid against the schema;
- every line the loader rejects for a type reason (wrong or missing field, bad type, out of
  range) is invalid against the schema too, and the loader really rejects it with the reason
  docs/landing-format.md lists.
"""
from __future__ import annotations

import copy
import datetime as dt
import gzip
import json
from pathlib import Path

import duckdb
import pytest
from fake_graph_api import FakeGraphAPI, make_media
from jsonschema import Draft202012Validator

from dagster_project.collect import demo
from dagster_project.load.snapshots import load_months
from dagster_project.registry.accounts import Account, read_registry
from dagster_project.registry.territories import territory_ids
from dagster_project.settings import SEEDS_DIR, Settings

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "landing.schema.json").read_text(encoding="utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA)
NOW = dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC)
TOKEN = "EAAGtest-schema-token-0123456789"


def read_landing(folder: Path) -> list[dict]:
    """Every line of every landing file under `folder` (`.ndjson` and `.ndjson.gz`)."""
    lines = []
    for path in sorted(p for p in folder.rglob("*") if p.name.endswith((".ndjson", ".ndjson.gz"))):
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as fh:
            lines += [json.loads(x) for x in fh if x.strip()]
    return lines


def errors(line) -> list[str]:
    return [e.message for e in VALIDATOR.iter_errors(line)]


def test_the_schema_is_valid_2020_12():
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_demo_lines_are_valid(tmp_path):
    real, _ = read_registry(SEEDS_DIR / "instagram_accounts.csv", territory_ids())
    accounts = demo.build_registry(real)[:400]
    demo.simulate(accounts, [dt.date(2021, 7, 1)], tmp_path, now=NOW)
    lines = read_landing(tmp_path)
    assert len(lines) >= 300
    assert {x["status"] for x in lines} >= {"ok"}
    for line in lines:
        assert not errors(line), (line["handle"], errors(line))


def test_graph_api_collector_lines_are_valid(tmp_path):
    from dagster_project.collect.graph_api import CollectorOptions, collect_month
    from dagster_project.months import current_month

    with FakeGraphAPI(token=TOKEN) as api:
        api.add_account("dense", media=make_media(120, per_day=4))
        api.add_account("empty", media=[])
        api.add_account("deleted", not_found=True)
        api.add_account("perso", not_business=True)
        api.add_account("weird", bad_param=True)
        settings = Settings(data_dir=tmp_path / "data", dagster_home=tmp_path / "dagster",
                            accounts_file=tmp_path / "accounts.csv", graph_url=api.url,
                            instagram_user_id=api.user_id, access_token=TOKEN)
        handles = ["dense", "empty", "deleted", "ghost", "perso", "weird"]
        accounts = [Account(h, f"commune:{i:05d}") for i, h in enumerate(handles, start=1)]
        collect_month(accounts, current_month(), settings,
                      options=CollectorOptions(backoff_scale=0.001))
    lines = read_landing(settings.landing_dir)
    assert {x["status"] for x in lines} == {"ok", "not_found", "not_business", "error"}
    assert len(lines) == len(handles)
    for line in lines:
        assert not errors(line), (line["handle"], errors(line))


# --------------------------------------------------------------------------- type rejections

GOOD = {
    "handle": "gersledepartement", "fetched_at": "2021-07-31T22:00:00Z", "source": "import",
    "status": "ok", "error": None,
    "business_discovery": {
        "id": "17841400000000000", "username": "gersledepartement", "name": "Le Gers",
        "followers_count": 15012, "follows_count": 312, "media_count": 1840,
        "media": {"data": [
            {"id": "17890000000000001", "timestamp": "2021-07-30T09:12:00+0000",
             "media_type": "IMAGE", "media_product_type": "FEED", "like_count": 412,
             "comments_count": 9, "permalink": "https://www.instagram.com/p/abc/"}]}},
}


def bad(path: str, value, *, delete: bool = False) -> dict:
    """GOOD with the field at dotted `path` set to `value` (or removed); `0` indexes a list."""
    line = copy.deepcopy(GOOD)
    parent, keys = line, path.split(".")
    for key in keys[:-1]:
        parent = parent[int(key)] if key.isdigit() else parent[key]
    last = int(keys[-1]) if keys[-1].isdigit() else keys[-1]
    if delete:
        del parent[last]
    else:
        parent[last] = value
    return line


M0 = "business_discovery.media.data.0"
# (line, the loader's reason): every reason of docs/landing-format.md that is about types.
TYPE_REJECTIONS = [
    ([1, 2], "not a JSON object"),
    ("a string", "not a JSON object"),
    (bad("handle", None, delete=True), "missing field handle"),
    (bad("handle", 42), "handle is not a string"),
    (bad("handle", "haut Savoie le Departement"), 'invalid handle "haut Savoie le Departement"'),
    (bad("fetched_at", None, delete=True), "missing field fetched_at"),
    (bad("fetched_at", 1627768800), "fetched_at is not a string"),
    (bad("fetched_at", "2021-07-31T22:00:00"),
     'fetched_at "2021-07-31T22:00:00" has no time zone or is not an ISO time'),
    (bad("source", None, delete=True), "missing field source"),
    (bad("source", "scraper"), 'unknown source "scraper"'),
    (bad("status", None, delete=True), "missing field status"),
    (bad("status", "maybe"), 'unknown status "maybe"'),
    (bad("business_discovery", None), "status ok without a business_discovery object"),
    (bad("business_discovery", "gers"), "followers_count is not an integer: missing"),
    (bad("business_discovery.followers_count", "15k"), "followers_count is not an integer: 15k"),
    (bad("business_discovery.followers_count", 312.5), "followers_count is not an integer: 312.5"),
    (bad("business_discovery.follows_count", None, delete=True),
     "follows_count is not an integer: missing"),
    (bad("business_discovery.media_count", -1), "media_count is negative: -1"),
    (bad("business_discovery.followers_count", 2_000_000_000),
     "followers_count is absurd (> 1e9): 2000000000"),
    (bad(f"{M0}.id", None, delete=True), "media item without id"),
    (bad(f"{M0}.timestamp", "2021-07-30 09:12"),
     'media 17890000000000001: timestamp "2021-07-30 09:12" is not an ISO time with time zone'),
    (bad(f"{M0}.like_count", "12"), "media 17890000000000001: like_count is not an integer: 12"),
    (bad(f"{M0}.comments_count", 1.5),
     "media 17890000000000001: comments_count is not an integer: 1.5"),
    (bad(f"{M0}.like_count", -3), "media 17890000000000001: negative count"),
    (bad(f"{M0}.comments_count", 1_000_000_001), "media 17890000000000001: absurd count (> 1e9)"),
    (bad(f"{M0}.view_count", "1.2k"), "media 17890000000000001: view_count is not an integer: 1.2k"),
    (bad(f"{M0}.view_count", -1), "media 17890000000000001: negative count"),
    (bad("error", {"code": "190", "message": "x"}), "error.code is not an integer"),
]


def test_good_line_is_valid_and_loads(tmp_path):
    assert not errors(GOOD)
    folder = tmp_path / "landing" / "2021-07"
    folder.mkdir(parents=True)
    (folder / "import.ndjson").write_text(json.dumps(GOOD) + "\n", encoding="utf-8")
    res = load_months(tmp_path / "wh.duckdb", tmp_path / "landing", [dt.date(2021, 7, 1)], now=NOW)
    assert (res.loaded, res.rejected, res.media) == (1, 0, 1)


def test_lines_the_loader_rejects_for_a_type_reason_fail_the_schema(tmp_path):
    folder = tmp_path / "landing" / "2021-07"
    folder.mkdir(parents=True)
    # line n of the file is case n
    (folder / "import.ndjson").write_text(
        "".join(json.dumps(line) + "\n" for line, _ in TYPE_REJECTIONS), encoding="utf-8")
    res = load_months(tmp_path / "wh.duckdb", tmp_path / "landing", [dt.date(2021, 7, 1)], now=NOW)
    assert res.loaded == 0
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        reasons = dict(con.execute("select line, reason from raw.rejected_lines").fetchall())
    got = [reasons.get(n) for n in range(1, len(TYPE_REJECTIONS) + 1)]
    assert got == [reason for _, reason in TYPE_REJECTIONS]
    for line, reason in TYPE_REJECTIONS:
        assert errors(line), f"the schema accepts a line the loader rejects ({reason}): {line}"


@pytest.mark.parametrize("handle", ["gers", "le.gers_32", "a" * 30])
def test_schema_accepts_what_the_loader_accepts_for_handles(handle):
    assert not errors({**GOOD, "handle": handle})
