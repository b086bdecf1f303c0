"""serve's automation without a daemon: on/off, crashed-run recovery, the landing sensor's
first tick, what `status` says of serve."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time

import pytest
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    RunRequest,
    SkipReason,
    build_sensor_context,
)
from dagster._core.test_utils import create_run_for_test

from dagster_project.defs import automation
from dagster_project.defs.automation import PID_TAG, alive, recover_dead_runs
from dagster_project.serve import daemon_state, next_ticks


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_automation_is_on_only_when_serve_says_so(monkeypatch):
    monkeypatch.delenv(automation.AUTOMATION_ENV, raising=False)
    assert automation.schedule_status() == DefaultScheduleStatus.STOPPED
    monkeypatch.setenv(automation.AUTOMATION_ENV, "on")
    assert automation.schedule_status() == DefaultScheduleStatus.RUNNING
    monkeypatch.setenv(automation.AUTOMATION_ENV, "off")
    assert not automation.automation_on()


def test_alive_knows_a_reused_pid():
    me = os.getpid()
    assert alive(me) and alive(me, since=time.time())
    assert not alive(me, since=time.time() - 10 * 365 * 86400)   # "started" before we did
    assert not alive(dead_pid())


def test_runs_whose_process_is_gone_are_marked_failed():
    with DagsterInstance.ephemeral() as instance:
        gone = create_run_for_test(instance, job_name="build_from_landing",
                                   status=DagsterRunStatus.STARTED,
                                   tags={PID_TAG: str(dead_pid())})
        mine = create_run_for_test(instance, job_name="build_from_landing",
                                   status=DagsterRunStatus.STARTED,
                                   tags={PID_TAG: str(os.getpid())})
        starting = create_run_for_test(instance, job_name="build_from_landing",
                                       status=DagsterRunStatus.STARTING)   # no pid yet
        done = create_run_for_test(instance, job_name="build_from_landing",
                                   status=DagsterRunStatus.SUCCESS,
                                   tags={PID_TAG: str(dead_pid())})
        recovered = recover_dead_runs(instance)
        assert [r for r, _pid in recovered] == [gone.run_id]
        status = {r.run_id: instance.get_run_by_id(r.run_id).status
                  for r in (gone, mine, starting, done)}
        assert status == {gone.run_id: DagsterRunStatus.FAILURE,
                          mine.run_id: DagsterRunStatus.STARTED,
                          starting.run_id: DagsterRunStatus.STARTING,
                          done.run_id: DagsterRunStatus.SUCCESS}
        assert recover_dead_runs(instance) == []          # once


def test_landing_sensor_takes_the_archive_as_built_on_its_first_tick(tmp_path, monkeypatch):
    from dagster_project.defs.sensors import landing_files_sensor

    monkeypatch.setenv("OBSERVATOIRE_DATA_DIR", str(tmp_path))
    landing = tmp_path / "landing" / "instagram"
    for month in ("2021-06", "2021-07"):
        (landing / month).mkdir(parents=True)
        (landing / month / "import-1.ndjson").write_text("{}\n")
    with DagsterInstance.ephemeral() as instance:
        first = landing_files_sensor(build_sensor_context(instance=instance))
        assert isinstance(first, SkipReason) and "2 landed month(s)" in first.skip_message
        cursor = json.loads(landing_files_sensor.evaluate_tick(
            build_sensor_context(instance=instance)).cursor)
        assert set(cursor) == {"2021-06-01", "2021-07-01"}
        later = landing / "2021-07" / "import-2.ndjson"
        later.write_text("{}\n")
        os.utime(later, (time.time() + 5, time.time() + 5))
        asked = landing_files_sensor(build_sensor_context(instance=instance,
                                                          cursor=json.dumps(cursor)))
        assert [(r.partition_key, type(r)) for r in asked] == [("2021-07-01", RunRequest)]


def test_daemon_state_from_heartbeats():
    now = 1_800_000_000.0
    assert "never started" in daemon_state({}, now)
    assert daemon_state({"SENSOR": now - 12, "SCHEDULER": now - 40}, now).startswith(
        "daemon alive (last heartbeat 12 s ago")
    assert daemon_state({"SENSOR": now - 600}, now).startswith("not running: last daemon")


@pytest.mark.parametrize(("utc", "expected"), [
    (dt.datetime(2026, 12, 6, 19, 0), {"graph_api_collection": "2026-12-25 02:00",
                                       "monthly_publication": "2027-01-01 06:00",
                                       "nightly_archive_schedule": "2026-12-07 04:30"}),
    (dt.datetime(2026, 12, 26, 3, 0), {"graph_api_collection": "2026-12-27 02:00",
                                       "monthly_publication": "2027-01-01 06:00",
                                       "nightly_archive_schedule": "2026-12-26 04:30"}),
])
def test_next_ticks_in_paris_time(utc, expected):
    from dagster_project.collection_plan import window_days_left
    from dagster_project.defs.schedules import schedules

    def keep(name, local):
        return name != "graph_api_collection" or window_days_left(local.date(), 7) > 0

    got = dict(next_ticks(schedules, utc.replace(tzinfo=dt.UTC).timestamp(), keep))
    assert got == {k: f"{v} (Europe/Paris)" for k, v in expected.items()}
