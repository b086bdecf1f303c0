"""The fault plan of `make year` and its accounting (pure): each fault alerted exactly once
(or not at all when it expects nothing), every other alert a false alarm."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from bench.year_faults import PARIS, Fault, account, load_plan, read_only


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=PARIS)


def test_a_plan_is_read_in_time_order_within_the_calendar(tmp_path):
    plan = tmp_path / "faults.json"
    plan.write_text(json.dumps([
        {"at": "2027-06-10T10:00", "kind": "token_revoked"},
        {"at": "2027-03-05T09:00", "kind": "receiver_down", "hours": 30},
        {"at": "2028-05-01T00:00", "kind": "token_renewed"}]))
    faults = load_plan(plan, at("2027-01-01T00:00"), at("2027-12-31T00:00"))
    assert [(f.kind, f.hours, f.expected) for f in faults] == [
        ("receiver_down", 30.0, None), ("token_revoked", 0.0, "token_invalid")]
    plan.write_text(json.dumps([{"at": "2027-03-05T09:00", "kind": "meteor"}]))
    with pytest.raises(ValueError, match="unknown kind 'meteor'.*token_expiring"):
        load_plan(plan, at("2027-01-01T00:00"), at("2027-12-31T00:00"))


def test_once_per_fault_duplicates_and_false_alarms_are_counted():
    faults = [Fault(at("2027-03-05T10:00"), "token_expiring", days=5),
              Fault(at("2027-06-10T10:00"), "token_revoked"),
              Fault(at("2027-11-15T09:00"), "receiver_down", hours=6)]
    alerts = [("2027-03-06T15:00+01:00", {"event": "token_expiring"}),
              ("2027-06-11T02:00+02:00", {"event": "token_invalid"}),
              ("2027-06-11T03:00+02:00", {"event": "token_invalid"}),     # twice
              ("2027-06-20T03:00+02:00", {"event": "token_invalid"}),     # too late: no fault
              ("2027-08-01T12:00+02:00", {"event": "not_published", "text": "2027-07…"})]
    got = account(faults, alerts)
    assert [(r["ok"], len(r["alerts"])) for r in got["faults"]] == [(True, 1), (False, 2),
                                                                     (True, 0)]
    assert got["faults_alerted_once"] == 1 and got["faults_expecting_an_alert"] == 2
    assert got["duplicates"] == 1
    assert [(a["at"], a["event"]) for a in got["false_alarms"]] == [
        ("2027-06-20T03:00+02:00", "token_invalid"), ("2027-08-01T12:00+02:00", "not_published")]


def test_a_fault_this_machine_cannot_inject_is_reported_not_failed():
    skipped = Fault(at("2027-02-22T01:00"), "disk_readonly", hours=6,
                    note="not injected: mount: permission denied")
    missed = Fault(at("2027-07-25T00:00"), "worker_killed")
    got = account([skipped, missed], [])
    assert [(r["ok"], r["note"]) for r in got["faults"]] == [
        (True, "not injected: mount: permission denied"), (False, "")]


def test_read_only_stops_writes_below_the_folder_until_undone(tmp_path):
    folder = tmp_path / "published"
    (folder / ".slots" / "a").mkdir(parents=True)
    try:
        undo = read_only(folder)
    except OSError as exc:            # root without the right to mount: nothing to test
        pytest.skip(f"cannot make a folder read-only here: {exc}")
    try:
        for target in (folder / "x", folder / ".slots" / "a" / "x"):
            with pytest.raises(OSError):
                target.write_text("x")
    finally:
        undo()
    (folder / ".slots" / "a" / "x").write_text("x")


def test_lines_neither_loaded_nor_rejected_are_lost(tmp_path):
    import duckdb

    from bench.year import lines_accounting

    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema raw; create table raw.load_files (file varchar, "
                    "loaded integer, rejected integer)")
        con.execute("insert into raw.load_files values ('2027-03/a.ndjson.gz', 48, 2), "
                    "('2027-03/b.ndjson.gz', 9, 0)")
    got = lines_accounting(warehouse, {"2027-03/a.ndjson.gz": 50, "2027-03/b.ndjson.gz": 10,
                                       "2027-03/c.ndjson.gz": 5})
    assert (got["written"], got["loaded"], got["rejected"], got["lost"]) == (65, 57, 2, 6)
    assert got["lost_by_file"] == {"2027-03/b.ndjson.gz": 1, "2027-03/c.ndjson.gz": 5}


def test_the_wall_time_is_split_by_job_and_the_rest():
    from bench.year import where_time_goes

    launches = [{"job": "build_from_landing", "seconds": 14.5},
                {"job": "collect_current_month", "seconds": 0.3},
                {"job": "build_from_landing", "seconds": 15.5}]
    assert where_time_goes(launches, 60.0) == {
        "build_from_landing": {"runs": 2, "seconds": 30.0},
        "collect_current_month": {"runs": 1, "seconds": 0.3},
        "ticks and the rest": {"runs": 0, "seconds": 29.7}}


def test_an_alert_counts_in_one_month_the_1st_and_2nd_in_the_month_published():
    from bench.year import alert_month

    assert alert_month("2027-10-01T06:30+02:00") == "2027-09"
    assert alert_month("2027-01-02T12:00+01:00") == "2026-12"
    assert alert_month("2027-10-03T00:30+02:00") == "2027-10"
