"""A post's permalink reaches the warehouse only when it is an Instagram post URL (issue 43).

The site publishes `permalink` as each top post's "voir" link: a `javascript:` or
`data:` URL, or a link to another site, would run or phish on the observatory's origin.
The loader stores anything else as NULL, keeps the line, and says how many it dropped.
"""
import datetime as dt
import json

import duckdb

from dagster_project.load.snapshots import load_months

JULY = dt.date(2021, 7, 1)
NOW = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)
F = "2021-07/a.ndjson"
PERMALINK_DROPPED = "permalink not an Instagram post URL: dropped"

HOSTILE = [
    "javascript:alert(document.domain)",
    "JaVaScRiPt:alert(2)",
    "  javascript:alert(3)",
    "\x01\t javascript:alert(4)",
    "data:text/html,<script>alert(5)</script>",
    "https://evil.example/p/phish/",
    "//evil.example/p/x",
    "https://www.instagram.com.evil.example/p/x/",
    "https://user@evil.example/p/x/",
    "https://user@www.instagram.com/p/x/",
    "https://www.instagram.com:8443/p/x/",
    "https://www.instagram.com:443/p/abc/",          # no port at all, as the site's links
    "http://www.instagram.com/p/x/",
    "https://www.instagram.com/p/x/\njavascript:alert(6)",
    "https://www.instagram.com/p/x/#\"><script>alert(7)</script>",
    "https://www.instagram.com/p/x/?a=\"onmouseover=alert(8)",
    "https://www.instagram.com/accounts/login/",
    "https://www.instagram.com/p/../../evil/",
    "https://www.instagram.com\\@evil.example/p/x/",
    " https://www.instagram.com/p/x/",
    "",
]
LEGIT = [
    "https://www.instagram.com/p/Cx1_-a/",
    "https://instagram.com/reel/abc/",
    "https://www.instagram.com/tv/abc",
    "https://WWW.INSTAGRAM.COM/p/abc/?igsh=xyz",
    "https://www.instagram.com/reels/C9zz-Q_1/",
    "https://www.instagram.com/p/demo180000000100000001/",      # the demo simulator's
    "https://www.instagram.com/p/m000001/?igsh=MzRlODBiNWFlZA==",
]


def post(mid, permalink):
    return {"id": mid, "timestamp": "2021-07-30T10:00:00+0000", "like_count": 1,
            "comments_count": 0, "permalink": permalink}


def snap(handle, media):
    return json.dumps({
        "handle": handle, "fetched_at": "2021-07-31T22:00:00Z", "source": "import",
        "status": "ok", "error": None, "business_discovery": {
            "id": "1", "username": handle, "name": handle, "followers_count": 100,
            "follows_count": 10, "media_count": 5, "media": {"data": media}}})


def table(wh, sql):
    with duckdb.connect(str(wh), read_only=True) as con:
        return con.execute(sql).fetchall()


def load(tmp_path, lines):
    landing, wh = tmp_path / "landing", tmp_path / "wh.duckdb"
    (landing / "2021-07").mkdir(parents=True)
    (landing / "2021-07" / "a.ndjson").write_text("\n".join(lines) + "\n")
    return load_months(wh, landing, [JULY], now=NOW), wh


def test_hostile_permalinks_are_dropped_and_their_lines_load(tmp_path):
    hostile = [post(f"h{i:02d}", url) for i, url in enumerate(HOSTILE)]
    legit = [post(f"l{i:02d}", url) for i, url in enumerate(LEGIT)]
    no_link = {k: v for k, v in post("n1", None).items() if k != "permalink"}
    lines = [snap("gers", hostile[:10] + legit[:4]),
             snap("isere", hostile[10:] + legit[4:] + [no_link, post("n2", None)]),
             snap("ardeche", [post("x1", 42)])]                # not even a string
    result, wh = load(tmp_path, lines)

    assert table(wh, "select file, line, reason from raw.rejected_lines") == []
    assert (result.loaded, result.rejected, result.media) == (3, 0, len(HOSTILE) + len(LEGIT) + 3)
    got = dict(table(wh, "select media_id, permalink from raw.media"))
    assert {m: got[m] for m in got if m.startswith(("h", "x"))} == {
        **{f"h{i:02d}": None for i in range(len(HOSTILE))}, "x1": None}
    assert {m: got[m] for m in got if m.startswith("l")} == {
        f"l{i:02d}": url for i, url in enumerate(LEGIT)}, "legitimate links kept verbatim"
    assert (got["n1"], got["n2"]) == (None, None)

    # the soft correction is counted (per month, per file) and named, line by line
    dropped = len(HOSTILE) + 1
    assert [(x.month, x.permalinks_dropped) for x in result.months] == [(JULY, dropped)]
    assert result.permalinks_dropped == dropped
    assert table(wh, "select file, permalinks_dropped from raw.load_files") == [(F, dropped)]
    assert result.corrected_samples == [              # the first 20, as for rejected lines
        (F, 1 + i // 10, f"media h{i:02d}: {PERMALINK_DROPPED}") for i in range(20)]
    assert all(not any(url and url in note for url in HOSTILE if url)
               for _, _, note in result.corrected_samples), "hostile values are not echoed"


def test_posts_of_rejected_lines_or_duplicate_copies_are_not_counted(tmp_path):
    bad = post("b1", "javascript:alert(1)")
    lines = [snap("gers", [bad, bad]),                       # the same post twice: one row
             snap("gers", [post("b2", "javascript:alert(2)")]),   # duplicate snapshot: rejected
             snap("isere", [post("ok", "https://www.instagram.com/p/ok/")])]
    result, wh = load(tmp_path, lines)
    assert result.rejected == 1
    assert table(wh, "select media_id, permalink from raw.media order by 1") == [
        ("b1", None), ("ok", "https://www.instagram.com/p/ok/")]
    assert result.permalinks_dropped == 1
    assert result.corrected_samples == [(F, 1, f"media b1: {PERMALINK_DROPPED}")]


def test_a_clean_month_reports_zero(tmp_path):
    result, wh = load(tmp_path, [snap("gers", [post("ok", "https://www.instagram.com/p/ok/")])])
    assert result.permalinks_dropped == 0 and result.corrected_samples == []
    assert table(wh, "select permalinks_dropped from raw.load_files") == [(0,)]


def test_the_documented_rule_is_the_loaders():
    from pathlib import Path

    from dagster_project.load.snapshots import PERMALINK_DROPPED as REASON
    from dagster_project.load.snapshots import PERMALINK_RE

    doc = (Path(__file__).resolve().parents[2] / "docs" / "landing-format.md").read_text()
    assert PERMALINK_RE in doc and REASON == PERMALINK_DROPPED


def test_a_warehouse_from_before_the_rule_gains_the_count(tmp_path):
    wh = tmp_path / "wh.duckdb"
    with duckdb.connect(str(wh)) as con:
        con.execute("create schema raw")
        con.execute("""create table raw.load_files (month date not null, file varchar not null,
            bytes bigint, lines integer, loaded integer, rejected integer,
            loaded_at timestamp not null)""")
        con.execute("insert into raw.load_files values "
                    "('2021-06-01', '2021-06/a.ndjson', 1, 1, 1, 0, '2021-07-01')")
    result, _ = load(tmp_path, [snap("gers", [post("b1", "javascript:alert(1)")])])
    assert result.permalinks_dropped == 1
    assert table(wh, "select file, permalinks_dropped from raw.load_files order by 1") == [
        ("2021-06/a.ndjson", None), (F, 1)]
