import datetime as dt
import gzip
import json

import duckdb
import pytest

from dagster_project.load.registry import load_registry
from dagster_project.load.snapshots import load_months
from dagster_project.registry.territories import territory_ids

JULY = dt.date(2021, 7, 1)
NOW = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)


def snap(handle, fetched_at="2021-07-31T22:00:00Z", followers=100, media=(), **over):
    line = {"handle": handle, "fetched_at": fetched_at, "source": "import", "status": "ok",
            "error": None, "business_discovery": {
                "id": "1", "username": handle, "name": handle, "followers_count": followers,
                "follows_count": 10, "media_count": 5, "media": {"data": list(media)}}}
    line.update(over)
    return json.dumps(line)


def post(mid, ts="2021-07-30T10:00:00+0000", likes=10, comments=1):
    return {"id": mid, "timestamp": ts, "like_count": likes, "comments_count": comments}


def write(landing, month, name, lines):
    folder = landing / month
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n".join(lines) + "\n")


def table(wh, sql):
    with duckdb.connect(str(wh), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_bad_lines_are_quarantined_and_the_rest_loads(tmp_path):
    landing, wh = tmp_path / "landing", tmp_path / "wh.duckdb"
    write(landing, "2021-07", "a.ndjson", [
        snap("gers", media=[post("m1"), post("m1"), post("m2", likes=5)]),  # dup media counts once
        "{not json",
        snap("deux", followers="15k"),
        snap("trois", fetched_at="2021-08-01T00:00:00Z"),
        snap("quatre", fetched_at="2021-07-31T22:00:00"),
        snap("gers"),                                                          # duplicate snapshot
    ])
    result = load_months(wh, landing, [JULY], now=NOW)
    assert (result.loaded, result.rejected, result.media) == (1, 5, 2)
    assert table(wh, "select file, line, reason from raw.rejected_lines order by line") == [
        ("2021-07/a.ndjson", 2, "invalid JSON (truncated line?)"),
        ("2021-07/a.ndjson", 3, "followers_count is not an integer: 15k"),
        ("2021-07/a.ndjson", 4, "fetched_at 2021-08-01T00:00:00Z is outside the month folder 2021-07"),
        ("2021-07/a.ndjson", 5, 'fetched_at "2021-07-31T22:00:00" has no time zone or is not an ISO time'),
        ("2021-07/a.ndjson", 6, "duplicate snapshot of gers at 2021-07-31T22:00:00Z (first at 2021-07/a.ndjson:1)"),
    ]
    assert table(wh, "select raw_line from raw.rejected_lines where line = 2") == [("{not json",)]


def test_loading_twice_equals_loading_once_and_changes_win(tmp_path):
    landing, wh = tmp_path / "landing", tmp_path / "wh.duckdb"
    write(landing, "2021-07", "a.ndjson", [snap("gers", media=[post("m1")]), snap("isere")])
    write(landing, "2021-06", "a.ndjson", [snap("gers", fetched_at="2021-06-30T22:00:00Z")])
    load_months(wh, landing, [dt.date(2021, 6, 1), JULY], now=NOW)
    first = table(wh, "select * exclude (loaded_at) from raw.snapshots order by all")
    load_months(wh, landing, [JULY], now=NOW)
    assert table(wh, "select * exclude (loaded_at) from raw.snapshots order by all") == first
    assert table(wh, "select count(*) from raw.media") == [(1,)]
    # The month's files change: the new content replaces the old, June is untouched.
    write(landing, "2021-07", "a.ndjson", [snap("gers", followers=999)])
    load_months(wh, landing, [JULY], now=NOW)
    assert table(wh, "select month, handle, followers_count from raw.snapshots order by all") == [
        (dt.date(2021, 6, 1), "gers", 100), (JULY, "gers", 999)]
    assert table(wh, "select count(*) from raw.media") == [(0,)]


def test_gzip_files_load_and_broken_gzip_is_rejected(tmp_path):
    landing, wh = tmp_path / "landing", tmp_path / "wh.duckdb"
    (landing / "2021-07").mkdir(parents=True)
    with gzip.open(landing / "2021-07" / "a.ndjson.gz", "wt") as fh:
        fh.write(snap("gers") + "\n")
    (landing / "2021-07" / "b.ndjson.gz").write_bytes(b"not gzip at all")
    result = load_months(wh, landing, [JULY], now=NOW)
    assert result.loaded == 1
    [(file, line, reason)] = table(wh, "select file, line, reason from raw.rejected_lines")
    assert (file, line) == ("2021-07/b.ndjson.gz", 0) and reason.startswith("not a valid gzip file")


def test_registry_rows_rejected_by_name(tmp_path):
    reg = tmp_path / "accounts.csv"
    reg.write_text("handle,territory_id,source_url,checked_on\n"
                   "gersledepartement,departement:32,,\n"
                   "haut Savoie le Departement,departement:74,,\n")
    n, rejected = load_registry(tmp_path / "wh.duckdb", reg, territory_ids())
    assert n == 1 and [r.line for r in rejected] == [3]
    assert table(tmp_path / "wh.duckdb", "select handle from raw.accounts") == [("gersledepartement",)]
    assert "haut Savoie le Departement" in table(
        tmp_path / "wh.duckdb", "select reason from raw.rejected_accounts")[0][0]


def test_hidden_likes_are_null_not_zero_and_views_are_kept(tmp_path):
    """Meta omits like_count when the owner hides like counts (comments_count when comments
    are off): such a post is valid and its counts stay null; a reel's view_count is kept."""
    landing, wh = tmp_path / "landing", tmp_path / "wh.duckdb"
    hidden = {"id": "h1", "timestamp": "2021-07-30T10:00:00+0000", "comments_count": 4}
    no_comments = {"id": "h2", "timestamp": "2021-07-29T10:00:00+0000", "like_count": 7}
    null_likes = {**post("h3"), "like_count": None}
    reel = {**post("r1", likes=50, comments=2), "media_product_type": "REELS", "view_count": 1200}
    write(landing, "2021-07", "a.ndjson",
          [snap("gers", media=[hidden, no_comments, null_likes, reel, post("v1")])])
    result = load_months(wh, landing, [JULY], now=NOW)
    assert (result.loaded, result.rejected, result.media) == (1, 0, 5)
    assert table(wh, "select media_id, like_count, comments_count, view_count, media_product_type"
                     " from raw.media order by media_id") == [
        ("h1", None, 4, None, None), ("h2", 7, None, None, None), ("h3", None, 1, None, None),
        ("r1", 50, 2, 1200, "REELS"), ("v1", 10, 1, None, None)]


def test_a_warehouse_from_before_hidden_likes_is_migrated(tmp_path):
    """raw.media of an older version (counts NOT NULL, no view_count) accepts null counts
    and gains view_count at the next load; its rows stay."""
    landing, wh = tmp_path / "landing", tmp_path / "wh.duckdb"
    with duckdb.connect(str(wh)) as con:
        con.execute("create schema raw")
        con.execute("""create table raw.media (month date not null, file varchar not null,
            line integer not null, handle varchar not null, fetched_at timestamp not null,
            media_id varchar not null, posted_at timestamp not null, media_type varchar,
            media_product_type varchar, like_count bigint not null,
            comments_count bigint not null, permalink varchar)""")
        con.execute("insert into raw.media values ('2021-06-01', 'old', 1, 'gers', "
                    "'2021-06-30 22:00', 'old1', '2021-06-29 10:00', 'IMAGE', 'FEED', 3, 1, null)")
    write(landing, "2021-07", "a.ndjson", [snap("gers", media=[
        {"id": "h1", "timestamp": "2021-07-30T10:00:00+0000"}])])
    result = load_months(wh, landing, [JULY], now=NOW)
    assert (result.loaded, result.rejected) == (1, 0)
    assert table(wh, "select media_id, like_count, comments_count, view_count from raw.media"
                     " order by media_id") == [("h1", None, None, None), ("old1", 3, 1, None)]


@pytest.mark.slow
def test_a_demo_run_loads_every_landed_line_but_the_rejected(demo_run):
    """Through the whole pipeline: per month, raw.snapshots holds every line of the landing
    files but those quarantined in raw.rejected_lines."""
    landed: dict[dt.date, int] = {}
    for path in (demo_run / "landing" / "instagram").glob("*/*.ndjson.gz"):
        month = dt.date.fromisoformat(path.parent.name + "-01")
        text = gzip.decompress(path.read_bytes()).decode("utf-8")
        landed[month] = landed.get(month, 0) + sum(1 for line in text.splitlines() if line.strip())
    wh = demo_run / "published" / "warehouse.duckdb"
    loaded = dict(table(wh, "select month, count(*) from raw.snapshots group by 1"))
    rejected = dict(table(wh, "select month, count(*) from raw.rejected_lines where line > 0 "
                              "group by 1"))
    assert landed and {k: loaded.get(k, 0) for k in landed} == {
        k: n - rejected.get(k, 0) for k, n in landed.items()}
