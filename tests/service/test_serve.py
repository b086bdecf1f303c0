"""`observatoire serve` runs the observatory by itself (real processes, loopback only).

A webhook receiver and the Graph API stand-in (its token expiring in 5 days) on 127.0.0.1;
one data folder, three lives of serve:
1. fresh, beside a published copy that holds an older month: it answers, every schedule and
   sensor is RUNNING under one daemon, `status` sees the daemon alive and the token; the
   token's coming expiry is alerted once, last month's missing publication once; a message
   the chat refuses (400) is marked failed and the later alerts still arrive; a landing file
   dropped into a month makes the daemon's sensor launch the build that ranks that month; a
   run made to fail is alerted once (run, step, error); with the receiver down, the alert
   of a failed run arrives once it is back up;
2. a crash: the daemon, its code server and the worker of a run in flight are SIGKILLed;
   serve notices, stops the webserver and exits non-zero, nothing left behind;
3. restarted: the run the crash left STARTED is marked failed (or already was, by the sweep
   of the serve that saw the crash), a new run goes through; SIGTERM
   with a run in flight cancels it and stops everything within 15 s, exit 0.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest
import requests
import yaml
from dagster_ui_server import free_port, processes_with
from fake_graph_api import FakeGraphAPI
from pipeline_support import BIN, ROOT, project_env

from dagster_project.defs.automation import publish_due
from dagster_project.months import month_key
from dagster_project.service import alerts

pytestmark = [pytest.mark.slow, pytest.mark.ui, pytest.mark.timeout(900)]

MONTH = "2026-10"
LOCATION = "dagster_project.definitions"
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
ACCOUNTS = {"gers_departement": ("departement:32", 5400),
            "lot_departement": ("departement:46", 3100),
            "tarn_departement": ("departement:81", 8800)}


TOKEN = "EAAGserve-T0KEN-s3cret-0123456789"
REFUSED_MARK = "[refused-by-the-chat]"
OLDER = "2026-09"          # in the published copy before serve starts, final


def older_published_copy(data: Path) -> None:
    """A published copy as an earlier publication left it: an older month, final."""
    path = data / "published" / "warehouse.duckdb"
    path.parent.mkdir(parents=True)
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(f"create table marts.fct_monthly_rankings as select date '{OLDER}-01'"
                    " as month, 'departement:32' as territory_id, false as is_provisional")


class Receiver:
    """A chat incoming-webhook stand-in on 127.0.0.1 that keeps every JSON POST; it can be
    stopped and started again on the same port."""

    def __init__(self):
        self.posts: list[dict] = []
        self.refused: list[dict] = []   # answered 400: texts containing REFUSED_MARK
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/observatoire"
        self.server = None
        self.start()

    def start(self):
        posts, refused = self.posts, self.refused

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if REFUSED_MARK in body["text"]:   # a message this chat will not take
                    refused.append(body)
                    self.send_response(400)
                    self.end_headers()
                    self.wfile.write(b"invalid_payload")
                    return
                posts.append(body)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def wait_for(self, pred, timeout: float) -> dict:
        return wait_until(lambda: next((p for p in list(self.posts) if pred(p)), None),
                          timeout, f"no such webhook POST; got {self.posts}")

    def count(self, pred) -> int:
        return sum(1 for p in list(self.posts) if pred(p))


def snapshot(handle: str, followers: int) -> str:
    media = [{"id": f"{handle}-{i}", "timestamp": f"{MONTH}-{20 + i}T10:00:00+0000",
              "like_count": 10 * (i + 1), "comments_count": i} for i in range(3)]
    return json.dumps({"handle": handle, "fetched_at": f"{MONTH}-30T22:00:00Z",
                       "source": "import", "status": "ok", "error": None,
                       "business_discovery": {"id": handle, "username": handle, "name": handle,
                                              "followers_count": followers, "follows_count": 5,
                                              "media_count": 3, "media": {"data": media}}})


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def wait_until(pred, timeout: float, what: str, step: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(step)
    raise TimeoutError(what)


class Serve:
    def __init__(self, data_dir: Path, env: dict):
        self.data_dir, self.env, self.port = data_dir, env, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"serve-{self.port}.log"

    def start(self, timeout: float = 120) -> float:
        started = time.monotonic()
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "observatoire"), "serve", "--port", str(self.port),
                 "--data-dir", str(self.data_dir)], cwd=ROOT, env=self.env, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        while time.monotonic() - started < timeout:
            assert self.proc.poll() is None, self.tail()
            try:
                if requests.get(f"{self.url}/server_info", timeout=2).ok:
                    return time.monotonic() - started
            except requests.RequestException:
                pass
            time.sleep(0.25)
        raise TimeoutError(self.tail())

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def gql(self, query: str, variables: dict | None = None) -> dict:
        r = requests.post(f"{self.url}/graphql", json={"query": query,
                                                        "variables": variables or {}},
                          timeout=60)
        r.raise_for_status()
        body = r.json()
        assert not body.get("errors"), body
        return body["data"]

    def runs(self) -> list[dict]:
        q = """{ runsOrError { ... on Runs { results { runId status jobName
                 tags { key value } } } } }"""
        return self.gql(q)["runsOrError"]["results"]

    def wait_run(self, pred, timeout: float = 400) -> dict:
        def found():
            assert self.proc.poll() is None, self.tail()
            return next((r for r in self.runs() if pred(r)), None)
        return wait_until(found, timeout, f"no such run\n{self.tail()}", step=1)

    def launch(self, job: str, partition: str, config: dict) -> str:
        q = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
                 ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
                 ... on RunConfigValidationInvalid { errors { message } } } }"""
        res = self.gql(q, {"p": {
            "selector": {"repositoryLocationName": LOCATION,
                         "repositoryName": "__repository__", "jobName": job},
            "runConfigData": yaml.safe_dump(config), "mode": "default",
            "executionMetadata": {"tags": [{"key": "dagster/partition",
                                            "value": f"{partition}-01"}]}}})["launchRun"]
        assert res["__typename"] == "LaunchRunSuccess", res
        return res["run"]["runId"]

    def sensor_ticks(self, name: str) -> int:
        q = """query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) {
                 ... on Sensor { sensorState { ticks(limit: 5) { status } } } } }"""
        got = self.gql(q, {"s": {"repositoryLocationName": LOCATION,
                                 "repositoryName": "__repository__", "sensorName": name}})
        return len(got["sensorOrError"]["sensorState"]["ticks"])


def worker_pid(dagster_home: Path, run_id: str, timeout: float = 120) -> int:
    from dagster import DagsterInstance

    from dagster_project.defs.automation import worker_pid as pid_of

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        def pid():
            run = instance.get_run_by_id(run_id)
            found = pid_of(instance, run) if run and run.status.value == "STARTED" else None
            return found[0] if found else None
        return wait_until(pid, timeout, f"no worker pid for run {run_id}")


def ranked(data: Path) -> int:
    with duckdb.connect(str(data / "published" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute("select count(*) from marts.fct_monthly_rankings where month = ?",
                           [f"{MONTH}-01"]).fetchone()[0]


@pytest.fixture
def served(tmp_path):
    data = tmp_path / "data"
    registry = tmp_path / "accounts.csv"
    registry.write_text("handle,territory_id,source_url,checked_on\n" + "".join(
        f"{h},{t},,\n" for h, (t, _f) in ACCOUNTS.items()))
    receiver = Receiver()
    api = FakeGraphAPI(token=TOKEN)
    api.token_expires_at = int(time.time()) + 5 * 86400
    api.start()
    env = project_env(data, OBSERVATOIRE_ACCOUNTS=str(registry),
                      OBSERVATOIRE_LANDING_SENSOR_INTERVAL_S="3",
                      OBSERVATOIRE_SWEEP_INTERVAL_S="5",
                      OBSERVATOIRE_WATCH_INTERVAL_S="3",
                      OBSERVATOIRE_ALERT_SENSOR_INTERVAL_S="3",
                      OBSERVATOIRE_ALERT_WEBHOOK_URL=receiver.url,
                      INSTAGRAM_ACCESS_TOKEN=TOKEN, INSTAGRAM_GRAPH_URL=api.url,
                      INSTAGRAM_USER_ID=api.user_id)
    older_published_copy(data)
    marker = f"DAGSTER_HOME={data / 'dagster'}"
    yield data, env, marker, receiver
    receiver.stop()
    api.stop()
    for pid in processes_with(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_serve_runs_the_observatory_by_itself(served):
    data, env, marker, receiver = served
    config = {"resources": {"observatoire": {"config": {"data_dir": str(data),
                                                        "source": "landing"}}}}

    # 1. fresh data folder
    serve = Serve(data, env)
    up_s = serve.start()
    instance_yaml = yaml.safe_load((data / "dagster" / "dagster.yaml").read_text())
    assert instance_yaml["run_monitoring"]["enabled"] is True
    assert instance_yaml["run_retries"]["retry_on_asset_or_op_failure"] is False
    assert instance_yaml["concurrency"]["pools"]["default_limit"] == 1
    assert instance_yaml["telemetry"]["enabled"] is False

    q = """{ instance { daemonHealth { allDaemonStatuses { daemonType healthy } } }
             repositoriesOrError { ... on RepositoryConnection { nodes {
               schedules { name scheduleState { status } }
               sensors { name sensorState { status } } } } } }"""

    def healthy():
        got = serve.gql(q)
        statuses = got["instance"]["daemonHealth"]["allDaemonStatuses"]
        return got if all(d["healthy"] for d in statuses) else None
    got = wait_until(healthy, 60, "daemons not healthy", step=1)
    daemons = {d["daemonType"] for d in got["instance"]["daemonHealth"]["allDaemonStatuses"]}
    assert {"SENSOR", "SCHEDULER", "QUEUED_RUN_COORDINATOR", "MONITORING"} <= daemons
    repo = got["repositoriesOrError"]["nodes"][0]
    assert {s["name"]: s["scheduleState"]["status"] for s in repo["schedules"]} == {
        "graph_api_collection": "RUNNING", "monthly_publication": "RUNNING",
        "nightly_archive_schedule": "RUNNING"}
    assert {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]} == {
        "landing_files_sensor": "RUNNING", "observatoire_watch": "RUNNING",
        "run_failure_alerts": "RUNNING"}
    cmds = [cmdline(p) for p in processes_with(marker)]
    assert sum(b"dagster-daemon\0run" in c for c in cmds) == 1
    assert sum(b"dagster-webserver" in c for c in cmds) == 1
    status = subprocess.run([str(BIN / "observatoire"), "status"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert status.returncode == 0, status.stderr
    assert "daemon alive" in status.stdout and "next monthly_publication" in status.stdout
    assert "valid (USER)" in status.stdout and "(4 day(s) left)" in status.stdout
    # the watch checks the token when serve starts: its expiry in 5 days is alerted
    token_post = receiver.wait_for(lambda p: p["event"] == "token_expiring", 90)
    # last month is not in the published copy (an older month is): alerted, once (below)
    due = publish_due(dt.datetime.now(dt.UTC))
    if due is not None:
        late = receiver.wait_for(lambda p: p["event"] == "not_published", 60)
        assert late["month"] == month_key(due) and "not published" in late["text"]
    # one message the chat refuses (400): marked failed, the later alerts still arrive
    alerts.record(data, "test:refused", alerts.Alert("test", f"Observatoire: {REFUSED_MARK}"))

    # the landing sensor's first tick took the (empty) archive for built; then a file lands
    wait_until(lambda: serve.sensor_ticks("landing_files_sensor"), 60, "no sensor tick")
    folder = data / "landing" / "instagram" / MONTH
    folder.mkdir(parents=True)
    (folder / "import-presse.ndjson").write_text("\n".join(
        snapshot(h, f) for h, (_t, f) in ACCOUNTS.items()) + "\n")
    dropped = time.monotonic()
    built = serve.wait_run(lambda r: r["jobName"] == "build_from_landing"
                           and r["status"] in FINISHED)
    drop_to_ranked = time.monotonic() - dropped
    assert built["status"] == "SUCCESS", serve.tail()
    assert {"key": "dagster/partition", "value": f"{MONTH}-01"} in built["tags"]
    assert ranked(data) == 3

    # a run made to fail (its registry does not exist): one POST naming run, step, error
    failing_config = {"resources": {"observatoire": {"config": {
        "data_dir": str(data), "source": "landing",
        "accounts_file": str(data / "no-such-registry.csv")}}}}
    failing = serve.launch("build_from_landing", MONTH, failing_config)
    failed_at = time.monotonic()
    post = receiver.wait_for(lambda p: p.get("run_id") == failing, 120)
    alert_s = time.monotonic() - failed_at
    assert post["event"] == "run_failed" and post["month"] == MONTH
    assert f"run {failing[:8]}" in post["text"] and "failed at step" in post["text"]
    assert "no-such-registry.csv" in post["text"] + post["detail"]

    # the receiver is down when a run fails: the alert arrives once it is back up
    receiver.stop()
    unseen = serve.launch("build_from_landing", MONTH, failing_config)
    serve.wait_run(lambda r: r["runId"] == unseen and r["status"] in FINISHED, 120)
    time.sleep(8)                                    # the alert sensor tried, in vain
    receiver.start()
    back_up = time.monotonic()
    receiver.wait_for(lambda p: p.get("run_id") == unseen, 60)
    retry_s = time.monotonic() - back_up

    # 2. a crash on the daemon's side: the daemon's process group (the daemon, its code
    # server and the run worker they started) is SIGKILLed, as by the OOM killer or a reboot
    doomed = serve.launch("build_from_landing", MONTH, config)
    pid = worker_pid(data / "dagster", doomed)
    daemon = next(p for p in processes_with(marker) if b"dagster-daemon\0run" in cmdline(p))
    assert os.getpgid(pid) == os.getpgid(daemon)
    os.killpg(os.getpgid(daemon), signal.SIGKILL)
    killed = time.monotonic()
    assert serve.proc.wait(timeout=60) != 0, serve.tail()
    wait_until(lambda: not processes_with(marker), 15, f"left: {processes_with(marker)}")
    crash_stop_s = time.monotonic() - killed
    assert "daemon exited" in serve.tail()

    # 3. restarted: the run left STARTED is marked failed, and runs go through again
    again = Serve(data, env)
    again.start()
    left = again.wait_run(lambda r: r["runId"] == doomed and r["status"] in FINISHED, 60)
    assert left["status"] == "FAILURE"
    # marked failed by the new serve at its start, or by the old one's sweep if it ran
    # between the kill and the moment serve saw the daemon gone
    logs = " ".join((serve.log.read_text() + again.log.read_text()).split())
    assert f"(pid {pid}): marked failed" in logs
    crash_post = receiver.wait_for(lambda p: p.get("run_id") == doomed, 120)
    assert crash_post["event"] == "run_failed" and f"pid {pid}" in crash_post["text"]
    after = again.launch("build_from_landing", MONTH, config)
    assert again.wait_run(lambda r: r["runId"] == after
                          and r["status"] in FINISHED)["status"] == "SUCCESS", again.tail()

    # SIGTERM with a run in flight: the run is cancelled, everything stops, exit 0
    inflight = again.launch("build_from_landing", MONTH, config)
    worker_pid(data / "dagster", inflight)
    signalled = time.monotonic()
    again.proc.send_signal(signal.SIGTERM)
    assert again.proc.wait(timeout=60) == 0, again.tail()
    wait_until(lambda: not processes_with(marker), 15, f"left: {processes_with(marker)}")
    stop_s = time.monotonic() - signalled
    assert stop_s < 15, stop_s
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(data / "dagster")) as instance:
        assert instance.get_run_by_id(inflight).status.value == "CANCELED", again.tail()

    # each event once, across restarts; no cancelled run alerted; no token anywhere
    for run_id in (failing, unseen, doomed):
        assert receiver.count(lambda p, r=run_id: p.get("run_id") == r) == 1, receiver.posts
    assert receiver.count(lambda p: p["event"] == "token_expiring") == 1
    assert receiver.count(lambda p: p["event"] == "not_published") == (due is not None)
    assert len(receiver.refused) == 1                       # refused once, never retried
    assert any(
        r["key"] == "test:refused" and r["channels"]["webhook"]["state"] == "failed"
        for r in alerts.recent(data, limit=100))
    assert receiver.count(lambda p: p.get("run_id") == inflight) == 0
    logs = serve.log.read_text() + again.log.read_text()
    assert TOKEN not in json.dumps(receiver.posts) and TOKEN not in logs
    print(f"\nserve answered after {up_s:.1f} s; landing file to ranked {drop_to_ranked:.1f} s; "
          f"failed run to alert {alert_s:.1f} s; receiver back up to alert {retry_s:.1f} s; "
          f"crash to all stopped {crash_stop_s:.1f} s; SIGTERM (1 run in flight) to all "
          f"stopped {stop_s:.1f} s")
    for p in (token_post, post, crash_post):
        print(f"alert received: {p['text']}")
