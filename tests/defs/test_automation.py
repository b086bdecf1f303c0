"""serve's automation without a daemon: on/off, crashed-run recovery, the landing sensor's
first tick, what `status` says of serve; when an alert is due, its text, once only."""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

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
from webhook_receiver import WebhookReceiver

from dagster_project.collect.plan import plan_day
from dagster_project.defs import automation
from dagster_project.defs.automation import (
    PID_TAG,
    alive,
    collection_short_alert,
    failed_check_label,
    nightly_archive,
    publish_due,
    recover_dead_runs,
    run_failure_alert,
    watch_once,
)
from dagster_project.service import alerts
from dagster_project.service.status import daemon_state, next_ticks


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
    from dagster_project.collect.plan import window_days_left
    from dagster_project.defs.schedules import schedules

    def keep(name, local):
        return name != "graph_api_collection" or window_days_left(local.date(), 7) > 0

    got = dict(next_ticks(schedules, utc.replace(tzinfo=dt.UTC).timestamp(), keep))
    assert got == {k: f"{v} (Europe/Paris)" for k, v in expected.items()}


UTC = dt.UTC


@pytest.mark.parametrize("now, due", [
    (dt.datetime(2026, 12, 2, 10, 59, tzinfo=UTC), None),            # 11:59 Paris (CET)
    (dt.datetime(2026, 12, 2, 11, 0, tzinfo=UTC), dt.date(2026, 11, 1)),   # 12:00 Paris
    (dt.datetime(2026, 7, 2, 9, 59, tzinfo=UTC), None),               # 11:59 Paris (CEST)
    (dt.datetime(2026, 7, 2, 10, 0, tzinfo=UTC), dt.date(2026, 6, 1)),
    (dt.datetime(2026, 12, 1, 23, 30, tzinfo=UTC), None),             # the 2nd 00:30 Paris
    (dt.datetime(2026, 12, 20, 8, 0, tzinfo=UTC), dt.date(2026, 11, 1)),
])
def test_publication_is_due_on_the_2nd_at_noon_paris(now, due):
    assert publish_due(now) == due


def test_run_failure_alert_names_the_step_or_the_data_tests():
    a = run_failure_alert("build_from_landing", "0123456789abcdef", "2026-10-01",
                          [("raw__instagram", ("FileNotFoundError: accounts registry not found:"
                                              " /x.csv\nwrapped"))], "run failed", [])
    assert a.event == "run_failed" and a.month == "2026-10" and a.run_id == "0123456789abcdef"
    assert a.text == ("Observatoire: run 01234567 of build_from_landing (2026-10) failed at "
                      "step raw__instagram: FileNotFoundError: accounts registry not found: "
                      "/x.csv")
    b = run_failure_alert("build_from_landing", "fedcba9876543210", "2026-10-01",
                          [("observatoire_dbt", "dbt build failed")], "",
                          ["marts/fct_monthly_rankings:unique_rank"])
    assert b.event == "data_test_failed"
    assert "marts/fct_monthly_rankings:unique_rank" in b.text
    c = run_failure_alert("collect_current_month", "aaaaaaaabbbb", None, [],
                          "the run's process (pid 42) is gone", [])
    assert c.text.endswith("failed: the run's process (pid 42) is gone") and c.month is None


def test_collection_short_alert_gives_the_outlook():
    plan = plan_day(500, 2, calls_per_hour=10, run_hours=10, calls_per_account=1)
    assert not plan.feasible
    a = collection_short_alert(dt.date(2026, 12, 1), plan)
    assert a.event == "collection_short" and a.month == "2026-12"
    assert f"{plan.remaining} left, {plan.window_capacity} reachable in 2 day(s)" in a.text


def landed(data_dir, month: str) -> None:
    """A landing file for `month`: the observatory collected it."""
    folder = data_dir / "landing" / "instagram" / month
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"graph_api-{month.replace('-', '')}28T010000Z-0001.ndjson.gz").write_bytes(b"")


def test_the_watch_alerts_once_when_the_month_is_not_published(tmp_path, monkeypatch):
    monkeypatch.setenv("OBSERVATOIRE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("INSTAGRAM_ACCESS_TOKEN", raising=False)
    for name in ("WEBHOOK_URL", "SMTP_HOST"):
        monkeypatch.delenv(f"OBSERVATOIRE_ALERT_{name}", raising=False)
    now = dt.datetime(2026, 12, 2, 11, 5, tzinfo=UTC)
    with DagsterInstance.ephemeral() as instance:
        # installed after November's window: nothing landed, nothing published, nothing due
        assert watch_once(instance, now, {})[0] == []
        landed(tmp_path, "2026-11")                   # collected, never published: alerted
        done, cursor = watch_once(instance, now, {})
        assert done == ["2026-11 not published"]
        again, _ = watch_once(instance, now + dt.timedelta(minutes=5), cursor)
        assert again == []
        early, _ = watch_once(instance, dt.datetime(2026, 12, 2, 10, 0, tzinfo=UTC), {})
        assert early == []
    [row] = alerts.recent(tmp_path)
    assert row["event"] == "not_published" and row["month"] == "2026-11"


def published_copy(path, months: dict[str, bool]):
    """A published warehouse as the publication job leaves it: marts.fct_monthly_rankings
    with, for each month, whether its rows are provisional."""
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.fct_monthly_rankings (month date, territory_id varchar,"
                    " is_provisional boolean)")
        for month, provisional in months.items():
            con.execute("insert into marts.fct_monthly_rankings values (?, 'region:76', ?)",
                        [f"{month}-01", provisional])


@pytest.mark.parametrize("months, alerted", [
    ({"2026-09": False, "2026-10": False}, True),     # older months, not the one due
    ({"2026-10": False, "2026-11": True}, True),      # the one due is still provisional
    ({"2026-10": False, "2026-11": False}, False),    # published
])
def test_the_not_published_check_reads_the_final_rows_of_the_marts(tmp_path, monkeypatch,
                                                                     months, alerted):
    monkeypatch.setenv("OBSERVATOIRE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("INSTAGRAM_ACCESS_TOKEN", raising=False)
    published_copy(tmp_path / "published" / "warehouse.duckdb", months)
    now = dt.datetime(2026, 12, 2, 11, 5, tzinfo=UTC)
    with DagsterInstance.ephemeral() as instance:
        done, _ = watch_once(instance, now, {})
    assert done == (["2026-11 not published"] if alerted else [])


def test_an_unreadable_published_copy_is_alerted_after_an_hour_once(tmp_path, caplog):
    copy = tmp_path / "published" / "warehouse.duckdb"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(b"not a duckdb file" * 100)
    now = dt.datetime(2026, 12, 2, 11, 5, tzinfo=UTC)
    done, cursor = automation.check_published(copy, tmp_path, now, {})
    assert done == [] and "unreadable" in caplog.text       # said in the log, not yet alerted
    later = now + dt.timedelta(minutes=30)
    assert automation.check_published(copy, tmp_path, later, cursor)[0] == []
    hour = now + dt.timedelta(hours=1)
    done, cursor = automation.check_published(copy, tmp_path, hour, cursor)
    assert done == ["published warehouse unreadable"]
    assert automation.check_published(copy, tmp_path, hour + dt.timedelta(minutes=5),
                                      cursor)[0] == []       # once per occurrence
    [row] = alerts.recent(tmp_path)
    assert row["event"] == "published_unreadable" and "11:05 UTC" in row["text"]
    copy.unlink()
    published_copy(copy, {"2026-11": False})
    assert automation.check_published(copy, tmp_path, hour, cursor) == ([], {})


def test_the_nightly_archive_check_alerts_on_a_problem(tmp_path, monkeypatch):
    monkeypatch.setenv("OBSERVATOIRE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("OBSERVATOIRE_BACKUP_DIR", raising=False)
    folder = tmp_path / "landing" / "instagram" / "2026-10"
    folder.mkdir(parents=True)
    (folder / "MANIFEST.tsv").write_text("not a manifest header\n")
    result = nightly_archive.execute_in_process(instance=DagsterInstance.ephemeral())
    assert result.success  # a problem found is an alert, not a failed run
    [row] = alerts.recent(tmp_path)
    assert row["event"] == "verify_failed"
    assert "2026-10/MANIFEST.tsv" in row["text"]


def test_a_failed_data_test_is_named_with_its_rows():
    from dagster import MetadataValue

    assert failed_check_label("marts/fct_monthly_rankings", "unique_rank", {
        "dagster_dbt/failed_row_count": MetadataValue.int(3)}) == (
        "marts/fct_monthly_rankings:unique_rank (3 rows)")
    assert failed_check_label("staging/stg_raw__media", "not_null_x", {}) == (
        "staging/stg_raw__media:not_null_x")


def test_a_crashed_run_that_dagster_retries_says_so():
    crashed = run_failure_alert("build_from_landing", "0123456789abcdef", "2027-07-01", [],
                                "the run's process (pid 42) is gone (killed, crash or reboot): "
                                "marked failed by observatoire", [], will_retry=True)
    assert crashed.event == "run_failed"
    assert crashed.text.endswith("is gone (killed, crash or reboot): marked failed by "
                                 "observatoire; Dagster runs it again once (run retries): "
                                 "nothing to do unless that run fails")
    step = run_failure_alert("build_from_landing", "0123456789abcdef", "2027-07-01",
                             [("published__warehouse", "OSError: [Errno 30] Read-only")], "", [])
    assert "runs it again" not in step.text


def test_blocking_tests_outside_the_marts_checks_are_named_from_dbts_results():
    """A blocking test of a staging model or of the reference CSVs (a negative scoring
    weight) stops dbt but is no Dagster check: the dbt step names it in its failure's
    metadata and the alert is a data_test_failed naming it (found by `make year`: the
    alert said only "the dbt CLI process … failed with exit code 1")."""
    from types import SimpleNamespace

    from dagster import MetadataValue

    from dagster_project.defs.assets.transform import failed_tests
    from dagster_project.defs.automation import FAILED_TESTS, failed_tests_of

    results = {"results": [
        {"unique_id": "test.observatoire.accepted_range_stg_reference__scoring_weights_weight"
                      "__0.1a2b", "status": "fail", "failures": 1},
        {"unique_id": "test.observatoire.unique_rank.9f", "status": "fail", "failures": 3},
        {"unique_id": "test.observatoire.not_null_fct_top_posts_month.77", "status": "warn",
         "failures": 2},
        {"unique_id": "model.observatoire.stg_reference__scoring_weights", "status": "error"},
        {"unique_id": "test.observatoire.relationships_x.5", "status": "error"},
        {"unique_id": "test.observatoire.unique_x.6", "status": "pass", "failures": 0}]}
    tests = failed_tests(results, checked={"unique_rank"})     # shown as a marts check
    assert tests == ["accepted_range_stg_reference__scoring_weights_weight__0 (1 rows)",
                     "relationships_x"]
    # a step failure's data as Dagster gives it (StepFailureData.user_failure_data.metadata;
    # the year's blocking_test_fails fault checks it on real runs)
    failure = SimpleNamespace(user_failure_data=SimpleNamespace(
        metadata={FAILED_TESTS: MetadataValue.json(tests)}))
    assert failed_tests_of(failure) == tests
    assert failed_tests_of(SimpleNamespace(user_failure_data=None)) == []
    alert = run_failure_alert("build_from_landing", "0123456789abcdef", "2027-03-01",
                              [("observatoire_dbt", "Failure: blocking data test(s) failed")],
                              "", tests)
    assert alert.event == "data_test_failed"
    assert "accepted_range_stg_reference__scoring_weights_weight__0 (1 rows)" in alert.text


def test_the_users_error_not_dagsters_wrapper():
    from dagster._utils.error import SerializableErrorInfo

    from dagster_project.defs.automation import error_chain

    cause = SerializableErrorInfo("FileNotFoundError: accounts registry not found: /x.csv\n",
                                  [], "FileNotFoundError")
    wrapped = SerializableErrorInfo(
        "dagster._core.errors.DagsterExecutionStepExecutionError: Error occurred while "
        "executing op \"raw__instagram\":\n", [], "DagsterExecutionStepExecutionError", cause)
    assert error_chain(wrapped) == "FileNotFoundError: accounts registry not found: /x.csv"


@pytest.fixture
def hook(monkeypatch):
    h = WebhookReceiver()
    monkeypatch.setenv("OBSERVATOIRE_ALERT_WEBHOOK_URL", h.url)
    monkeypatch.delenv("OBSERVATOIRE_ALERT_SMTP_HOST", raising=False)
    yield h
    h.close()


def test_a_failing_check_does_not_stop_the_watch_nor_the_delivery(tmp_path, monkeypatch, hook,
                                                                    caplog):
    monkeypatch.setenv("OBSERVATOIRE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("INSTAGRAM_ACCESS_TOKEN", "EAAwatch-t0ken-0123456789")
    monkeypatch.setenv("INSTAGRAM_GRAPH_URL", "http://127.0.0.1:9")   # nothing listens
    registry = tmp_path / "accounts.csv"
    registry.mkdir()                      # the registry cannot be read: that part raises
    monkeypatch.setenv("OBSERVATOIRE_ACCOUNTS", str(registry))
    alerts.record(tmp_path, "run_failed:abc", alerts.Alert("run_failed", "a run failed"))
    landed(tmp_path, "2026-10")                  # running since October
    now = dt.datetime(2026, 12, 28, 9, 0, tzinfo=UTC)    # in the collection window
    with DagsterInstance.ephemeral() as instance:
        done, cursor = watch_once(instance, now, {})
        assert done == ["2026-11 not published", "collection check failed"]
        assert cursor["token_checked"] == "2026-12-28"       # the part after it still ran
        assert "the collection check failed" in caplog.text
        assert watch_once(instance, now + dt.timedelta(minutes=5), cursor)[0] == [
            "collection check failed"]
    sent = sorted(p["event"] for p in hook.bodies)
    assert sent == ["not_published", "run_failed", "watch_failed"]            # delivered, the failure once a day
    assert "IsADirectoryError" in next(p["text"] for p in hook.bodies
                                       if p["event"] == "watch_failed")


def test_an_outbox_that_cannot_be_written_never_skips_the_backup(tmp_path, monkeypatch):
    from dagster_project.archive.landing import write_landing_file

    monkeypatch.setenv("OBSERVATOIRE_DATA_DIR", str(tmp_path))
    backup = tmp_path / "backup"
    monkeypatch.setenv("OBSERVATOIRE_BACKUP_DIR", str(backup))
    landing = tmp_path / "landing" / "instagram"
    write_landing_file(landing / "2026-09" / "import-1.ndjson.gz", ["{}"], recorded_by="test")
    (landing / "2026-10").mkdir()
    (landing / "2026-10" / "MANIFEST.tsv").write_text("not a manifest header\n")  # a problem
    (tmp_path / "alerts").write_text("a file where the outbox folder should be")
    result = nightly_archive.execute_in_process(instance=DagsterInstance.ephemeral(),
                                                raise_on_error=False)
    assert list(backup.rglob("import-1.ndjson.gz"))          # the night's backup went on
    assert result.success                                 # an alert lost, not the night


def test_a_token_problem_that_ends_and_comes_back_is_alerted_again(tmp_path, monkeypatch, hook):
    from fake_graph_api import FakeGraphAPI

    token = "EAAoccurrence-t0ken-0123456789"
    monkeypatch.setenv("OBSERVATOIRE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OBSERVATOIRE_ACCOUNTS", str(tmp_path / "none.csv"))
    monkeypatch.delenv("INSTAGRAM_APP_TOKEN", raising=False)
    monkeypatch.delenv("INSTAGRAM_APP_SECRET", raising=False)
    published_copy(tmp_path / "published" / "warehouse.duckdb", {"2027-02": False})

    def check(day: int, given: str, cursor: dict) -> tuple[list[str], dict]:
        monkeypatch.setenv("INSTAGRAM_ACCESS_TOKEN", given)
        with DagsterInstance.ephemeral() as instance:
            return watch_once(instance, dt.datetime(2027, 3, day, 9, 0, tzinfo=UTC), cursor)

    with FakeGraphAPI(token=token) as api:
        monkeypatch.setenv("INSTAGRAM_GRAPH_URL", api.url)
        done, cursor = check(4, "EAArevoked-0123456789", {})       # revoked in March
        assert done == ["token_invalid"]
        done, cursor = check(5, "EAArevoked-0123456789", cursor)
        assert done == []                                            # same occurrence
        done, cursor = check(6, token, cursor)                       # renewed: valid again
        assert done == [] and not cursor.get("token_problems")
        done, cursor = check(9, "EAArevoked-again-0123456789", cursor)  # revoked again
        assert done == ["token_invalid"]
    invalid = [p for p in hook.bodies if p["event"] == "token_invalid"]
    assert len(invalid) == 2


@pytest.mark.parametrize("open_problems, state, problem, expected", [
    ({}, "invalid", "token_invalid:invalid", ("token_invalid:invalid:since-2027-03-04",
                                              {"token_invalid:invalid": "2027-03-04"})),
    ({"token_invalid:invalid": "2027-03-01"}, "invalid", "token_invalid:invalid",
     ("token_invalid:invalid:since-2027-03-01", {"token_invalid:invalid": "2027-03-01"})),
    ({"token_invalid:invalid": "2027-03-01"}, "valid", None, (None, {})),
    ({"token_invalid:invalid": "2027-03-01"}, "unknown", None,
     (None, {"token_invalid:invalid": "2027-03-01"})),           # no answer: nothing closes
    ({"token_invalid:invalid": "2027-03-01"}, "valid", "token_invalid:scopes:ads_read",
     ("token_invalid:scopes:ads_read:since-2027-03-04",
      {"token_invalid:scopes:ads_read": "2027-03-04"})),
])
def test_an_alert_key_names_the_occurrence(open_problems, state, problem, expected):
    assert automation.occurrence(open_problems, state, problem, "2027-03-04") == expected


class FinishesAfterListing:
    """The instance as recover_dead_runs sees it when a run ends (here: cancelled by the
    operator) between the listing of runs in progress and the check of its process."""

    def __init__(self, instance):
        self.instance = instance

    def __getattr__(self, name):
        return getattr(self.instance, name)

    def get_runs(self, *args, **kwargs):
        runs = self.instance.get_runs(*args, **kwargs)
        for run in runs:
            self.instance.report_run_canceled(run, "stopped by the operator")
        return runs


def test_a_run_that_ends_after_the_listing_is_not_marked_failed():
    with DagsterInstance.ephemeral() as instance:
        run = create_run_for_test(instance, job_name="build_from_landing",
                                  status=DagsterRunStatus.STARTED,
                                  tags={PID_TAG: str(dead_pid())})
        assert recover_dead_runs(FinishesAfterListing(instance)) == []
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.CANCELED


LIVENESS = Path(automation.__file__).parents[1] / "service" / "liveness.py"
AS_NOBODY_BEHIND_HIDDEN_PROC = ["unshare", "--mount", "--fork", "sh", "-c",
                                ('mount -t proc -o hidepid=invisible proc /proc && exec setpriv'
                                 ' --reuid=65534 --regid=65534 --clear-groups "$@"'), "sh"]


def test_a_run_of_another_user_behind_a_hidden_proc_is_alive(tmp_path):
    """serve as its own user under ProtectProc=invisible, the operator's run as root: the
    run's process cannot be seen in /proc, and is alive."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"):
        pytest.skip("needs root, unshare and setpriv to hide /proc from another user")
    # the module's source goes in the command: the checkout may not be readable by nobody
    script = LIVENESS.read_text() + (
        "\nimport sys, time\n"
        "print(os.path.exists(f'/proc/{sys.argv[1]}'), alive(int(sys.argv[1]), time.time()),"
        " alive(int(sys.argv[2])))\n")
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        out = subprocess.run([*AS_NOBODY_BEHIND_HIDDEN_PROC, "/usr/bin/python3", "-c", script,
                              str(other.pid), str(dead_pid())], cwd="/",
                             check=False, capture_output=True, text=True, timeout=30)
        if out.returncode != 0 and "mount" in out.stderr:
            pytest.skip(f"cannot mount a private /proc here: {out.stderr.strip()}")
        assert out.stdout.split() == ["False", "True", "False"], out.stderr
    finally:
        other.kill()
        other.wait()
