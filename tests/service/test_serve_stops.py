"""How `observatoire serve` ends, and what it leaves: nothing.

Real processes on 127.0.0.1 (no mock): a SIGKILL of serve takes the webserver, the daemon
and their code servers down with it (PR_SET_PDEATHSIG, then serve's watchdog for the
process groups); a SIGTERM that comes while the webserver is being started, or while dbt
parses the manifest, leaves nothing running and serve exits 0; a second serve on the same DAGSTER_HOME refuses to start; the processes a serve
killed together with its watchdog left are stopped by the next serve. Fast ones: serve's
stop cancels the runs its daemon launched but not those of `observatoire run`;
`observatoire alert --send` delivers to a webhook (what systemd's observatoire-down.service
runs when serve is down).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from dagster_ui_server import free_port, processes_with
from pipeline_support import BIN, ROOT, project_env
from webhook_receiver import WebhookReceiver

from dagster_project.service import serve as supervisor


def slow(test):
    """A test that starts a real serve (dagster-webserver and dagster-daemon)."""
    return pytest.mark.slow(pytest.mark.ui(pytest.mark.timeout(240)(test)))


def wait_until(pred, timeout: float, what, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(step)
    raise TimeoutError(what() if callable(what) else what)


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def pgid_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[2])


def described(pids: list[int]) -> str:
    return "; ".join(f"{p} (group {pgid_of(p)}): {cmdline(p)[:120]!r}" for p in pids)


class Serve:
    """`observatoire serve` in a new session, its output in a file."""

    def __init__(self, tmp_path: Path):
        self.data = tmp_path / "data"
        self.env = project_env(self.data)
        self.marker = f"DAGSTER_HOME={self.data / 'dagster'}"
        self.port = free_port()
        self.log = tmp_path / f"serve-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def launch(self) -> subprocess.Popen:
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "observatoire"), "serve", "--port", str(self.port),
                 "--data-dir", str(self.data)], cwd=ROOT, env=self.env, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        return self.proc

    def wait_up(self, timeout: float = 150) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            assert self.proc.poll() is None, self.tail()
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/server_info", timeout=2).ok:
                    return time.monotonic() - started
            except requests.RequestException:
                pass
            time.sleep(0.25)
        raise TimeoutError(self.tail())

    def left(self) -> list[int]:
        return processes_with(self.marker)

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def kill_everything(self) -> None:
        for _ in range(3):
            pids = self.left()
            if self.proc is not None and self.proc.poll() is None:
                pids.append(self.proc.pid)
            if not pids:
                break
            for pgid in {pgid_of(p) for p in pids} - {None}:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.3)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def serve(tmp_path):
    s = Serve(tmp_path)
    yield s
    s.kill_everything()


@slow
def test_kill_9_of_serve_leaves_no_process(serve):
    """SIGKILL gives serve no chance to stop anything: its children must go by themselves
    (PDEATHSIG), and their children (the code servers) through serve's watchdog."""
    serve.launch()
    up_s = serve.wait_up()
    # the daemon's code server runs: serve has grandchildren
    daemon = wait_until(lambda: next((p for p in serve.left() if b"dagster-daemon" in
                                      cmdline(p)), None), 30, "no daemon")
    wait_until(lambda: [p for p in serve.left() if pgid_of(p) == daemon and p != daemon
                        and b"grpc" in cmdline(p)], 60, lambda: described(serve.left()))
    before = serve.left()
    assert len(before) >= 5, described(before)   # serve, webserver, daemon, 2 code servers…
    killed = time.monotonic()
    os.kill(serve.proc.pid, signal.SIGKILL)
    serve.proc.wait(timeout=10)
    wait_until(lambda: not serve.left(), 30,
               lambda: f"left 30 s after kill -9 of serve: {described(serve.left())}",
               step=0.2)
    gone_s = time.monotonic() - killed
    print(f"\nserve up in {up_s:.1f} s; {len(before)} processes; all gone {gone_s:.1f} s "
          "after its kill -9")
    # the watchdog said what it did, and recorded the stop for the next serve and ui
    assert "is gone: stopping the process groups" in serve.tail(), serve.tail()
    state = supervisor.read_state(serve.data / "dagster")
    assert state["pid"] == serve.proc.pid and state["stopped_at"], state


def webserver_started(serve: Serve) -> bool:
    return any(b"dagster-webserver" in cmdline(c) for c in children(serve.proc.pid))


def parsing():
    """dbt is imported (its extension module mapped) and has been parsing for 1 s: inside
    dbt's runner, which catches every exception (measured: the signal lands there)."""
    since: list[float] = []

    def moment(serve: Serve) -> bool:
        if since:
            return time.monotonic() - since[0] > 1.0
        try:
            if "dbt_extractor" in Path(f"/proc/{serve.proc.pid}/maps").read_text():
                since.append(time.monotonic())
        except OSError:
            pass
        return False
    return moment


@slow
@pytest.mark.parametrize("when, says", [
    ("webserver-starting", "SIGTERM received: stopping the webserver and the daemon"),
    ("manifest-parse", "SIGTERM received before the webserver and the daemon started")],
    ids=["webserver-starting", "manifest-parse"])
def test_a_signal_while_serve_starts_leaves_no_process(serve, when, says):
    """SIGTERM (systemctl stop) while serve starts: the moment the webserver exists (the
    daemon is being started, the supervisor's loop has not begun), or while the manifest is
    parsed (in-process dbt, which catches every exception). serve stops everything it
    started and exits 0: a stop is not a failure (systemd would start
    observatoire-down.service for a non-zero exit)."""
    moment = webserver_started if when == "webserver-starting" else parsing()
    proc = serve.launch()
    deadline, sent = time.monotonic() + 150, None
    while time.monotonic() < deadline and proc.poll() is None and sent is None:
        if moment(serve):
            os.kill(proc.pid, signal.SIGTERM)
            sent = time.monotonic()
            threads = len(os.listdir(f"/proc/{proc.pid}/task"))
        else:
            time.sleep(0.001)
    assert sent is not None, f"serve never reached that moment\n{serve.tail()}"
    code = proc.wait(timeout=90)
    wait_until(lambda: not serve.left(), 15,
               lambda: f"left after SIGTERM at start: {described(serve.left())}\n{serve.tail()}")
    print(f"\nSIGTERM at {when} (serve had {threads} threads): serve exited "
          f"{code}, everything stopped {time.monotonic() - sent:.1f} s after the signal")
    assert code == 0, serve.tail()
    # at the webserver's start, the signal waited until it was recorded, then stopped it
    assert says in serve.tail(), serve.tail()


def test_a_second_serve_on_the_same_home_refuses(tmp_path, serve):
    home = serve.data / "dagster"
    with supervisor.DaemonLock(home, "serve", "http://127.0.0.1:4321").acquire():
        proc = serve.launch()
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            code = None
        assert code == 1, f"serve started beside another one\n{serve.tail()}"
    said = " ".join(serve.tail().split())   # rich wraps long lines
    assert "already runs a Dagster daemon on this DAGSTER_HOME" in said, said
    assert f"serve (pid {os.getpid()})" in said and "http://127.0.0.1:4321" in said, said
    assert serve.left() == []


def test_the_next_serve_stops_what_a_killed_one_left(tmp_path):
    """Serve and its watchdog both SIGKILLed: the process groups recorded in
    observatoire-daemon.json are stopped by the next holder of the lock; only the processes
    of this DAGSTER_HOME (a reused group id must not kill a stranger)."""
    home = tmp_path / "dagster"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]   # no shim: one process
    ours = subprocess.Popen(sleeper, env=env, start_new_session=True)
    stranger = subprocess.Popen(sleeper, env={**os.environ, "DAGSTER_HOME": "/elsewhere"},
                                start_new_session=True)
    try:
        # until the child has exec'd, /proc shows the environment it was forked with
        marker = f"DAGSTER_HOME={home}".encode()
        deadline = time.monotonic() + 15
        while marker not in Path(f"/proc/{ours.pid}/environ").read_bytes().split(b"\0"):
            assert time.monotonic() < deadline, "the sleeper never started"
            time.sleep(0.05)
        (home / supervisor.STATE_FILE).write_text(json.dumps(
            {"owner": "serve", "pid": 999999, "groups": [ours.pid, stranger.pid],
             "stopped_at": None}))
        said: list[str] = []
        with supervisor.DaemonLock(home, "serve").acquire(said.append):
            assert ours.wait(timeout=15) is not None
            assert stranger.poll() is None
        assert said and f"({ours.pid})" in said[0], said
        # stopped cleanly this time: nothing to reap at the next start
        said.clear()
        with supervisor.DaemonLock(home, "serve").acquire(said.append):
            pass
        assert said == []
    finally:
        for p in (ours, stranger):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def test_stop_cancels_the_daemons_runs_not_those_of_observatoire_run(tmp_path, monkeypatch):
    from dagster import DagsterInstance, DagsterRunStatus, job, op

    from dagster_project.defs.automation import PID_TAG
    from dagster_project.defs.instance import ensure_instance

    @op
    def noop():
        return None

    @job
    def some_job():
        noop()

    home = tmp_path / "dagster"
    ensure_instance(home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:
        daemons = instance.create_run_for_job(some_job, status=DagsterRunStatus.STARTED)
        operators = instance.create_run_for_job(
            some_job, status=DagsterRunStatus.STARTED, tags={PID_TAG: str(os.getpid())})
    said: list[str] = []
    supervisor.cancel_in_flight(said.append, timeout_s=0.5)
    with DagsterInstance.get() as instance:
        assert instance.get_run_by_id(operators.run_id).status == DagsterRunStatus.STARTED
        assert instance.get_run_by_id(daemons.run_id).status == DagsterRunStatus.CANCELING
    text = "\n".join(said)
    assert f"cancelling run {daemons.run_id}" in text
    assert f"cancelling run {operators.run_id}" not in text
    assert f"leaving run {operators.run_id}" in text


def alert_send(data: Path, text: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "observatoire"), "alert", "--send", text,
                           "--data-dir", str(data)], cwd=ROOT, env=project_env(data, **env),
                          capture_output=True, text=True, timeout=60, check=False)


def test_alert_send_delivers_what_systemd_says_when_serve_is_down(tmp_path):
    receiver = WebhookReceiver()
    try:
        text = "Observatoire: serve is down on obs-1 (start-limit-hit)"
        done = alert_send(tmp_path / "data", text, OBSERVATOIRE_ALERT_WEBHOOK_URL=receiver.url)
        assert done.returncode == 0, done.stdout + done.stderr
        [post] = receiver.bodies
        assert post["text"] == text and post["event"] == "serve_down", post
        # each call is an occurrence of its own: a second one is sent too
        again = alert_send(tmp_path / "data", text, OBSERVATOIRE_ALERT_WEBHOOK_URL=receiver.url)
        assert again.returncode == 0 and len(receiver.bodies) == 2, again.stderr
    finally:
        receiver.close()
    # nothing took it (the receiver is gone): exit 1, the alert stays in the outbox
    port = free_port()
    lost = alert_send(tmp_path / "data", "Observatoire: serve is down",
                      OBSERVATOIRE_ALERT_WEBHOOK_URL=f"http://127.0.0.1:{port}/hooks/x")
    assert lost.returncode == 1, lost.stdout + lost.stderr
    # no channel at all: exit 1 with a message saying so
    none = alert_send(tmp_path / "data2", "Observatoire: serve is down")
    assert none.returncode == 1 and "no alert channel" in none.stderr, none.stderr
