"""Bad landing lines (docs/landing-format.md): each is quarantined in raw.rejected_lines with its file, its
line number, the reason and the line verbatim; every other line of the month still loads."""
from __future__ import annotations

import datetime as dt
import gzip

import pytest
from rel_helpers import (
    JULY,
    dumps,
    load_files,
    loaded,
    media,
    query,
    rejected,
    rejected_raw,
    snapshot,
    without,
    write,
)

F = "2021-07/a.ndjson"


def _one_bad_line(landing, bad: str, **load_kw):
    """a.ndjson = good line, bad line, good line; returns the LoadResult."""
    good1 = dumps(snapshot("gersledepartement"))
    good3 = dumps(snapshot("isere.le.departement"))
    write(landing.root, "2021-07", "a.ndjson", [good1, bad, good3])
    return landing.load(**load_kw)


def _assert_only_line_2_rejected(landing, result, reason: str, bad: str) -> None:
    assert rejected(landing.db) == [(F, 2, reason)]
    assert rejected_raw(landing.db) == {(F, 2): bad}, "the bad line is kept verbatim"
    assert loaded(landing.db) == [(F, 1, "gersledepartement"), (F, 3, "isere.le.departement")]
    assert load_files(landing.db)[F][1:] == (3, 2, 1)          # lines, loaded, rejected
    assert (result.lines, result.loaded, result.rejected) == (3, 2, 1)
    assert result.rejected_samples == [(F, 2, reason)]      # what the Dagster log shows


def test_invalid_json(landing):
    bad = '{"handle": "paris_maville", "fetched_at": 2021-07-31, "status": "ok"}'
    result = _one_bad_line(landing, bad)
    _assert_only_line_2_rejected(landing, result, "invalid JSON", bad)


def test_truncated_last_line(landing):
    good = [dumps(snapshot(h)) for h in ("gersledepartement", "isere.le.departement")]
    cut = dumps(snapshot("paris_maville"))[:97]                 # writer killed mid-line
    write(landing.root, "2021-07", "a.ndjson", [*good, cut], final_newline=False)
    result = landing.load()
    assert rejected(landing.db) == [(F, 3, "invalid JSON (truncated line?)")]
    assert rejected_raw(landing.db) == {(F, 3): cut}
    assert loaded(landing.db) == [(F, 1, "gersledepartement"), (F, 2, "isere.le.departement")]
    assert (result.lines, result.loaded, result.rejected) == (3, 2, 1)


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("followers_count", "15k", "followers_count is not an integer: 15k"),
    ("followers_count", "15012", "followers_count is not an integer: 15012"),
    ("follows_count", 312.5, "follows_count is not an integer: 312.5"),
    ("media_count", None, "media_count is not an integer: missing"),
    ("followers_count", True, "followers_count is not an integer: true"),
])
def test_wrong_types(landing, field, value, reason):
    bad = dumps(snapshot("paris_maville", **{field: value}))
    result = _one_bad_line(landing, bad)
    _assert_only_line_2_rejected(landing, result, reason, bad)


def test_wrong_type_in_media(landing):
    bad = dumps(snapshot("paris_maville", items=[media("m7", likes="412")]))
    result = _one_bad_line(landing, bad)
    _assert_only_line_2_rejected(landing, result, "media m7: like_count is not an integer: 412",
                                 bad)


@pytest.mark.parametrize(("bad_obj", "reason"), [
    (snapshot("paris_maville", followers_count=-5), "followers_count is negative: -5"),
    (snapshot("paris_maville", follows_count=-1), "follows_count is negative: -1"),
    (snapshot("paris_maville", items=[media("m7", comments=-2)]), "media m7: negative count"),
])
def test_negative_counts(landing, bad_obj, reason):
    bad = dumps(bad_obj)
    result = _one_bad_line(landing, bad)
    _assert_only_line_2_rejected(landing, result, reason, bad)


@pytest.mark.parametrize(("bad_obj", "reason"), [
    (snapshot("paris_maville", followers_count=1_000_000_001),
     "followers_count is absurd (> 1e9): 1000000001"),
    (snapshot("paris_maville", media_count=10**25),
     "media_count is absurd (> 1e9): 10000000000000000000000000"),
    # beyond a 128-bit integer: used to slip through as a NULL count with status ok
    (snapshot("paris_maville", followers_count=10**45),
     f"followers_count is absurd (> 1e9): {10**45}"),
    (snapshot("paris_maville", items=[media("m7", likes=2_000_000_000)]),
     "media m7: absurd count (> 1e9)"),
    (snapshot("paris_maville", items=[media("m7", likes=10**45)]),
     "media m7: absurd count (> 1e9)"),
])
def test_absurd_counts(landing, bad_obj, reason):
    bad = dumps(bad_obj)
    result = _one_bad_line(landing, bad)
    _assert_only_line_2_rejected(landing, result, reason, bad)


def test_count_of_exactly_one_billion_is_kept(landing):
    write(landing.root, "2021-07", "a.ndjson",
          [dumps(snapshot("paris_maville", followers_count=1_000_000_000))])
    landing.load()
    assert rejected(landing.db) == []
    assert query(landing.db, "select followers_count from raw.snapshots") == [(1_000_000_000,)]


@pytest.mark.parametrize(("bad_obj", "reason"), [
    (without(snapshot("paris_maville"), "handle"), "missing field handle"),
    ({**snapshot("paris_maville"), "handle": None}, "missing field handle"),
    (without(snapshot("paris_maville"), "fetched_at"), "missing field fetched_at"),
    ({**snapshot("paris_maville"), "fetched_at": None}, "missing field fetched_at"),
    (without(snapshot("paris_maville"), "status"), "missing field status"),
    (without(snapshot("paris_maville"), "source"), "missing field source"),
])
def test_missing_required_fields(landing, bad_obj, reason):
    bad = dumps(bad_obj)
    result = _one_bad_line(landing, bad)
    _assert_only_line_2_rejected(landing, result, reason, bad)


@pytest.mark.parametrize(("fetched_at", "reason"), [
    ("2021-08-01T00:00:00Z", "fetched_at 2021-08-01T00:00:00Z is outside the month folder 2021-07"),
    ("2021-06-30T23:59:59Z", "fetched_at 2021-06-30T23:59:59Z is outside the month folder 2021-07"),
    # 00:30 in Paris on 1 July is still June in UTC: the month is judged in UTC
    ("2021-07-01T00:30:00+02:00",
     "fetched_at 2021-06-30T22:30:00Z is outside the month folder 2021-07"),
])
def test_fetched_at_outside_the_month_folder(landing, fetched_at, reason):
    bad = dumps(snapshot("paris_maville", fetched_at))
    result = _one_bad_line(landing, bad)
    _assert_only_line_2_rejected(landing, result, reason, bad)


def test_fetched_at_with_offset_is_stored_in_utc(landing):
    # 1 August 01:30 in Paris is 31 July 23:30 UTC: it belongs to the 2021-07 folder
    write(landing.root, "2021-07", "a.ndjson",
          [dumps(snapshot("paris_maville", "2021-08-01T01:30:00+02:00"))])
    landing.load()
    assert rejected(landing.db) == []
    assert query(landing.db, "select fetched_at from raw.snapshots") == [
        (dt.datetime(2021, 7, 31, 23, 30),)]


def test_fetched_at_in_the_future(landing):
    now = dt.datetime(2021, 7, 20, 12, 0, tzinfo=dt.UTC)
    lines = [dumps(snapshot("gersledepartement", "2021-07-20T12:09:59Z", items=[])),  # skew
             dumps(snapshot("paris_maville", "2021-07-20T12:10:01Z", items=[])),
             dumps(snapshot("isere.le.departement", "2021-07-20T11:00:00Z", items=[]))]
    write(landing.root, "2021-07", "a.ndjson", lines)
    result = landing.load(now=now)
    assert rejected(landing.db) == [(F, 2, "fetched_at 2021-07-20T12:10:01Z is in the future")]
    assert rejected_raw(landing.db) == {(F, 2): lines[1]}
    assert loaded(landing.db) == [(F, 1, "gersledepartement"), (F, 3, "isere.le.departement")]
    assert (result.loaded, result.rejected) == (2, 1)


@pytest.mark.parametrize(("bad_obj", "reason"), [
    (snapshot("paris_maville", "2021-07-31T22:00:00"),
     'fetched_at "2021-07-31T22:00:00" has no time zone or is not an ISO time'),
    (snapshot("paris_maville", "2021-07-31 22:00"),
     'fetched_at "2021-07-31 22:00" has no time zone or is not an ISO time'),
    (snapshot("paris_maville", "31/07/2021 22:00 UTC"),
     'fetched_at "31/07/2021 22:00 UTC" has no time zone or is not an ISO time'),
    (snapshot("paris_maville", items=[media("m7", "2021-07-30T09:12:00")]),
     'media m7: timestamp "2021-07-30T09:12:00" is not an ISO time with time zone'),
])
def test_timestamps_without_time_zone(landing, bad_obj, reason):
    bad = dumps(bad_obj)
    result = _one_bad_line(landing, bad)
    _assert_only_line_2_rejected(landing, result, reason, bad)


def test_duplicate_snapshots_first_kept(landing):
    first = dumps(snapshot("paris_maville", followers_count=100))
    write(landing.root, "2021-07", "a.ndjson", [
        first,
        dumps(snapshot("gersledepartement")),
        dumps(snapshot("paris_maville", followers_count=200)),               # same instant
        dumps(snapshot("@Paris_MaVille", "2021-07-31T22:00:00+00:00", followers_count=300)),
    ])
    write(landing.root, "2021-07", "b.ndjson", [
        dumps(snapshot("paris_maville", "2021-08-01T00:00:00+02:00", followers_count=400)),
        dumps(snapshot("paris_maville", "2021-07-30T22:00:00Z", followers_count=500)),  # other time
    ])
    result = landing.load()
    why = "duplicate snapshot of paris_maville at 2021-07-31T22:00:00Z (first at 2021-07/a.ndjson:1)"
    assert rejected(landing.db) == [(F, 3, why), (F, 4, why), ("2021-07/b.ndjson", 1, why)]
    assert query(landing.db, """select file, line, handle, fetched_at, followers_count
                                from raw.snapshots order by file, line""") == [
        (F, 1, "paris_maville", dt.datetime(2021, 7, 31, 22), 100),
        (F, 2, "gersledepartement", dt.datetime(2021, 7, 31, 22), 15012),
        ("2021-07/b.ndjson", 2, "paris_maville", dt.datetime(2021, 7, 30, 22), 500)]
    assert (result.loaded, result.rejected) == (3, 3)


def test_duplicate_media_across_pages_counted_once(landing):
    page1 = [media("m1", "2021-07-30T09:00:00+0000"), media("m2", "2021-07-29T09:00:00+0000")]
    page2 = [media("m2", "2021-07-29T09:00:00+0000"), media("m3", "2021-07-28T09:00:00+0000")]
    write(landing.root, "2021-07", "a.ndjson", [
        dumps(snapshot("paris_maville", items=page1 + page2)),
        # the same post seen again in a later snapshot belongs to that snapshot too
        dumps(snapshot("paris_maville", "2021-07-31T23:00:00Z", items=[page1[0]])),
    ])
    result = landing.load()
    assert rejected(landing.db) == []
    assert query(landing.db, """select line, media_id, like_count from raw.media
                                order by line, media_id""") == [
        (1, "m1", 412), (1, "m2", 412), (1, "m3", 412), (2, "m1", 412)]
    assert query(landing.db, "select line, media_returned from raw.snapshots order by line") == [
        (1, 3), (2, 1)]
    assert result.media == 4


def test_media_after_the_snapshot(landing):
    at = "2021-07-20T12:00:00Z"
    write(landing.root, "2021-07", "a.ndjson", [
        dumps(snapshot("gersledepartement", at, items=[media("ok1", "2021-07-20T12:59:59+0000")])),
        dumps(snapshot("paris_maville", at, items=[media("late", "2021-07-20T13:00:01+0000")])),
        dumps(snapshot("isere.le.departement", at, items=[
            media("aaa", "2021-07-20T13:30:00+0000"), media("zzz", "2021-07-25T08:00:00+0000"),
            media("fine", "2021-07-19T08:00:00+0000")])),
    ])
    result = landing.load()
    assert rejected(landing.db) == [
        (F, 2, ("media late posted at 2021-07-20T13:00:01Z after the snapshot "
               "(fetched_at 2021-07-20T12:00:00Z)")),
        # the message names the latest post together with its own timestamp
        (F, 3, ("media zzz posted at 2021-07-25T08:00:00Z after the snapshot "
               "(fetched_at 2021-07-20T12:00:00Z)"))]
    assert loaded(landing.db) == [(F, 1, "gersledepartement")]
    assert query(landing.db, "select media_id, posted_at from raw.media") == [
        ("ok1", dt.datetime(2021, 7, 20, 12, 59, 59))]
    assert (result.loaded, result.rejected, result.media) == (1, 2, 1)


def test_gz_file_that_is_not_gzip(landing):
    write(landing.root, "2021-07", "a.ndjson", [dumps(snapshot("gersledepartement"))])
    write(landing.root, "2021-07", "b.ndjson.gz", b"not gzip at all\n")
    good_gz = landing.root / "2021-07" / "c.ndjson.gz"
    good_gz.write_bytes(gzip.compress((dumps(snapshot("paris_maville")) + "\n").encode()))
    result = landing.load()
    assert rejected(landing.db) == [
        ("2021-07/b.ndjson.gz", 0, "not a valid gzip file: Not a gzipped file (b'no')")]
    assert rejected_raw(landing.db) == {("2021-07/b.ndjson.gz", 0): None}
    assert loaded(landing.db) == [(F, 1, "gersledepartement"),
                                  ("2021-07/c.ndjson.gz", 1, "paris_maville")]
    files = load_files(landing.db)
    assert files["2021-07/b.ndjson.gz"] == (None, 0, 0, 1)
    assert files["2021-07/c.ndjson.gz"][1:] == (1, 1, 0)
    assert (result.months[0].files, result.loaded, result.rejected) == (3, 2, 1)


def test_truncated_gzip_is_a_file_level_rejection(landing):
    data = gzip.compress(b"".join((dumps(snapshot(f"h{i}")) + "\n").encode() for i in range(50)))
    write(landing.root, "2021-07", "b.ndjson.gz", data[: len(data) // 2])
    write(landing.root, "2021-07", "a.ndjson", [dumps(snapshot("gersledepartement"))])
    landing.load()
    [(file, line, reason)] = rejected(landing.db)
    assert (file, line) == ("2021-07/b.ndjson.gz", 0)
    assert reason.startswith("not a valid gzip file: ")
    assert loaded(landing.db) == [(F, 1, "gersledepartement")]


def test_empty_file(landing):
    write(landing.root, "2021-07", "a.ndjson", b"")
    write(landing.root, "2021-07", "b.ndjson", b"\n\n   \n")      # blank lines only
    result = landing.load()
    assert loaded(landing.db) == []
    assert rejected(landing.db) == []
    assert load_files(landing.db) == {F: (0, 0, 0, 0), "2021-07/b.ndjson": (6, 0, 0, 0)}
    assert (result.months[0].files, result.lines, result.loaded, result.rejected) == (2, 0, 0, 0)


def test_crlf_line_endings(landing):
    lines = [dumps(snapshot(h)) for h in ("gersledepartement", "paris_maville", "isere.le.departement")]
    write(landing.root, "2021-07", "a.ndjson", lines, newline="\r\n")
    result = landing.load()
    assert rejected(landing.db) == []
    assert loaded(landing.db) == [(F, 1, "gersledepartement"), (F, 2, "paris_maville"),
                                  (F, 3, "isere.le.departement")]
    assert query(landing.db, "select distinct permalink from raw.media") == [
        ("https://www.instagram.com/p/m1/",)], "no stray CR in the values"
    assert load_files(landing.db)[F][1:] == (3, 3, 0)
    assert result.loaded == 3


def test_invalid_utf8_line(landing):
    """A line that is not UTF-8 is not JSON: that line only is rejected, not the whole load."""
    good = dumps(snapshot("gersledepartement")).encode()
    bad = dumps(snapshot("paris_maville", name="Caf\u00e9")).encode().replace(
        "Caf\u00e9".encode(), b"Caf\xe9")                                   # Latin-1 byte
    write(landing.root, "2021-07", "a.ndjson", good + b"\n" + bad + b"\n" + good.replace(
        b"gersledepartement", b"isere.le.departement") + b"\n")
    write(landing.root, "2021-07", "b.ndjson", [dumps(snapshot("ardeche"))])
    result = landing.load()
    assert rejected(landing.db) == [(F, 2, "invalid UTF-8 (bad bytes shown as U+FFFD)")]
    assert rejected_raw(landing.db)[(F, 2)] == bad.decode("utf-8", "replace")
    assert loaded(landing.db) == [(F, 1, "gersledepartement"), (F, 3, "isere.le.departement"),
                                  ("2021-07/b.ndjson", 1, "ardeche")]
    assert (result.loaded, result.rejected) == (3, 1)


def test_not_an_object_and_unknown_enums(landing):
    lines = ["[1, 2]", '"text"', "null",
             dumps(snapshot("a_b", source="scraper")),
             dumps(snapshot("a_c", status="maybe")),
             dumps(snapshot("haut Savoie")),
             dumps(snapshot("gersledepartement"))]
    write(landing.root, "2021-07", "a.ndjson", lines)
    landing.load()
    assert rejected(landing.db) == [
        (F, 1, "not a JSON object"), (F, 2, "not a JSON object"), (F, 3, "not a JSON object"),
        (F, 4, 'unknown source "scraper"'), (F, 5, 'unknown status "maybe"'),
        (F, 6, 'invalid handle "haut Savoie"')]
    assert loaded(landing.db) == [(F, 7, "gersledepartement")]


def test_error_status_without_business_discovery_loads(landing):
    line = dumps({"handle": "ghost_account", "fetched_at": "2021-07-02T10:00:00Z",
                  "source": "graph_api", "status": "not_found",
                  "error": {"code": 110, "subcode": 2207013, "message": "Cannot find User"},
                  "business_discovery": None})
    write(landing.root, "2021-07", "a.ndjson", [line])
    landing.load()
    assert rejected(landing.db) == []
    assert query(landing.db, """select handle, status, error_code, error_subcode, error_message,
                                followers_count, media_returned from raw.snapshots""") == [
        ("ghost_account", "not_found", 110, 2207013, "Cannot find User", None, None)]


def test_invariant_rows_equal_lines_minus_rejected(landing):
    """Mixed file: raw.snapshots rows = non-blank lines landed − lines rejected."""
    lines = []
    for i in range(40):
        h = f"compte_{i:02d}"
        kind = i % 8
        if kind == 0:
            lines.append(dumps(snapshot(h, followers_count="15k")))
        elif kind == 1:
            lines.append("{broken")
        elif kind == 2:
            lines.append("")                                             # blank: not counted
        elif kind == 3:
            lines.append(dumps(snapshot(h, "2021-09-01T00:00:00Z")))
        elif kind == 4:
            lines.append(dumps(snapshot("compte_dup")))                   # first kept, rest dup
        else:
            lines.append(dumps(snapshot(h, items=[media(f"p{i}"), media(f"q{i}")])))
    write(landing.root, "2021-07", "a.ndjson", lines, newline="\r\n")
    result = landing.load()
    non_blank = sum(1 for x in lines if x.strip())
    n_rejected = query(landing.db, "select count(*) from raw.rejected_lines")[0][0]
    n_rows = query(landing.db, "select count(*) from raw.snapshots")[0][0]
    assert (non_blank, n_rejected) == (35, 5 + 5 + 5 + 4)
    assert n_rows == non_blank - n_rejected == 16
    assert load_files(landing.db)[F][1:] == (non_blank, n_rows, n_rejected)
    assert (result.lines, result.loaded, result.rejected) == (non_blank, n_rows, n_rejected)
    assert query(landing.db, "select count(*) from raw.media")[0][0] == 2 * 15 + 1 == result.media
    # line numbers are physical line numbers in the file (blank lines included)
    assert [ln for _f, ln, _r in rejected(landing.db)][:4] == [1, 2, 4, 9]


def test_other_months_are_not_read(landing):
    write(landing.root, "2021-07", "a.ndjson", [dumps(snapshot("gersledepartement"))])
    write(landing.root, "2021-08", "a.ndjson", [dumps(snapshot("paris_maville", "2021-08-02T00:00:00Z"))])
    result = landing.load(months=[JULY])
    assert loaded(landing.db) == [(F, 1, "gersledepartement")]
    assert [m.month for m in result.months] == [JULY]
