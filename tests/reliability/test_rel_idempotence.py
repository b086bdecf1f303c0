"""Loading is idempotent per month; a reloaded month reflects its landing folder now."""
from __future__ import annotations

import datetime as dt
import gzip
import shutil

from rel_helpers import (
    AUGUST,
    JULY,
    JUNE,
    RAW_TABLES,
    dumps,
    media,
    query,
    rejected,
    snapshot,
    table,
    write,
)


def _month(landing_root, key: str, day: str, handles: list[str], *, followers: int = 1000,
           bad: bool = True) -> None:
    lines = [dumps(snapshot(h, f"{key}-{day}T10:00:00Z", followers_count=followers + i,
                            items=[media(f"{h}-p1", f"{key}-01T09:00:00+0000"),
                                   media(f"{h}-p2", f"{key}-02T09:00:00+0000")]))
             for i, h in enumerate(handles)]
    if bad:
        lines.append("{truncated")
    write(landing_root, key, "graph_api-1.ndjson", lines)
    gz = landing_root / key / "import-2.ndjson.gz"
    gz.write_bytes(gzip.compress((dumps(snapshot("extra_" + key.replace("-", "_"),
                                                 f"{key}-03T00:00:00Z", items=[])) + "\n").encode()))


def _all_tables(db) -> dict[str, list[tuple]]:
    return {t: table(db, t) for t in RAW_TABLES}


def test_loading_a_month_twice_equals_loading_it_once(landing, tmp_path):
    _month(landing.root, "2021-06", "20", ["gersledepartement", "paris_maville"])
    _month(landing.root, "2021-07", "21", ["gersledepartement", "paris_maville", "ardeche"])
    once = tmp_path / "once.duckdb"
    first = landing.load([JUNE, JULY], db=once)
    landing.load([JUNE, JULY])
    second = landing.load([JUNE, JULY])
    landing.load([JULY])                               # and once more, one month only
    assert _all_tables(landing.db) == _all_tables(once)
    assert (second.loaded, second.rejected, second.media) == (first.loaded, first.rejected,
                                                              first.media) == (7, 2, 10)
    assert query(landing.db, "select month, count(*) from raw.snapshots group by 1 order by 1") \
        == [(JUNE, 3), (JULY, 4)]
    assert query(landing.db, "select count(*) from raw.load_files") == [(4,)]


def test_reload_after_landing_changed(landing, tmp_path):
    _month(landing.root, "2021-06", "20", ["gersledepartement", "paris_maville"])
    _month(landing.root, "2021-07", "21", ["gersledepartement", "paris_maville", "ardeche"])
    _month(landing.root, "2021-08", "05", ["gersledepartement"])
    landing.load([JUNE, JULY, AUGUST])
    others_before = {t: query(landing.db, f"select * from {t} where month <> ? order by all",
                              [JULY]) for t in RAW_TABLES}

    # July changes: a line is fixed and one dropped, the gz file disappears, a file is added
    july = landing.root / "2021-07"
    (july / "import-2.ndjson.gz").unlink()
    write(landing.root, "2021-07", "graph_api-1.ndjson", [
        dumps(snapshot("gersledepartement", "2021-07-21T10:00:00Z", followers_count=5555,
                       items=[media("gersledepartement-p1", "2021-07-01T09:00:00+0000")])),
        dumps(snapshot("paris_maville", "2021-07-21T10:00:00Z", followers_count=7777, items=[])),
    ])
    write(landing.root, "2021-07", "graph_api-3.ndjson", [
        dumps(snapshot("isere.le.departement", "2021-07-30T10:00:00Z", items=[])),
        dumps(snapshot("paris_maville", "2021-07-21T10:00:00Z", items=[])),  # dup of file 1
    ])
    result = landing.load([JULY])

    assert query(landing.db, """select file, line, handle, fetched_at, followers_count
                                from raw.snapshots where month = ? order by file, line""",
                 [JULY]) == [
        ("2021-07/graph_api-1.ndjson", 1, "gersledepartement", dt.datetime(2021, 7, 21, 10), 5555),
        ("2021-07/graph_api-1.ndjson", 2, "paris_maville", dt.datetime(2021, 7, 21, 10), 7777),
        ("2021-07/graph_api-3.ndjson", 1, "isere.le.departement", dt.datetime(2021, 7, 30, 10),
         15012)]
    assert query(landing.db, "select handle, media_id from raw.media where month = ? order by all",
                 [JULY]) == [("gersledepartement", "gersledepartement-p1")]
    assert [r for r in rejected(landing.db) if r[0].startswith("2021-07")] == [
        ("2021-07/graph_api-3.ndjson", 2, ("duplicate snapshot of paris_maville at "
         "2021-07-21T10:00:00Z (first at 2021-07/graph_api-1.ndjson:2)"))]
    assert query(landing.db, "select file from raw.load_files where month = ? order by 1",
                 [JULY]) == [("2021-07/graph_api-1.ndjson",), ("2021-07/graph_api-3.ndjson",)]
    assert query(landing.db, """select handle, fetched_at, count(*) from raw.snapshots
                                group by all having count(*) > 1""") == [], "nothing duplicated"
    others_after = {t: query(landing.db, f"select * from {t} where month <> ? order by all",
                             [JULY]) for t in RAW_TABLES}
    assert others_after == others_before, "June and August untouched"
    assert (result.loaded, result.rejected, result.media) == (3, 1, 1)

    # same warehouse as a clean load of the new landing state
    clean = tmp_path / "clean.duckdb"
    landing.load([JUNE, JULY, AUGUST], db=clean)
    assert _all_tables(landing.db) == _all_tables(clean)


def test_month_folder_removed_empties_the_month(landing):
    _month(landing.root, "2021-06", "20", ["gersledepartement"])
    _month(landing.root, "2021-07", "21", ["gersledepartement"])
    landing.load([JUNE, JULY])
    shutil.rmtree(landing.root / "2021-07")
    result = landing.load([JULY])
    for t in RAW_TABLES:
        assert query(landing.db, f"select count(*) from {t} where month = ?", [JULY]) == [(0,)]
    assert query(landing.db, "select count(*) from raw.snapshots where month = ?", [JUNE]) == [(2,)]
    assert (result.months[0].files, result.loaded) == (0, 0)
