"""`observatoire ui` serves the Dagster UI on 127.0.0.1 and, on SIGINT (Ctrl-C), SIGTERM
(timeout, systemd, docker stop) or SIGHUP (terminal closed), stops the whole `dagster dev`
process group: no process is left behind and the port is free again. It refuses to start
(exit 1, before dagster dev starts a daemon) while `observatoire serve`, or any daemon, runs
on the same DAGSTER_HOME: two daemons would run every schedule twice."""
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from dagster_ui_server import free_port, processes_with

from dagster_project.service import serve as supervisor

BIN = Path(sys.executable).parent


def restore_signals() -> None:  # background shells start children with SIGINT ignored
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


@pytest.mark.ui
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 0), (signal.SIGTERM, 128 + 15),
                                       (signal.SIGHUP, 128 + 1)],
                         ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_ui_starts_and_stops_its_whole_process_group(tmp_path, sig, code):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBSERVATOIRE_", "DAGSTER_"))}
    marker = f"DAGSTER_HOME={tmp_path / 'data' / 'dagster'}"
    proc = subprocess.Popen([str(BIN / "observatoire"), "ui", "--port", str(port),
                             "--data-dir", str(tmp_path / "data")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            preexec_fn=restore_signals)  # noqa: PLW1509 - before exec, no threads
    try:
        deadline, up = time.monotonic() + 120, False
        while time.monotonic() < deadline and not up:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as r:
                    up = r.status == 200
            except OSError:
                time.sleep(1)
        assert up, "the UI did not answer on /server_info"
        assert (tmp_path / "data" / "dagster" / "dagster.yaml").exists()
        assert len(processes_with(marker)) >= 3  # wrapper, dagster dev, webserver, …
        os.kill(proc.pid, sig)                           # to the wrapper only
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == code, err[-2000:]
        assert "Dagster UI stopped" in err
        assert processes_with(marker) == [], "a dagster process outlived the UI"
        with socket.socket() as s, pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", port))               # nothing listens any more
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in processes_with(marker):
            os.kill(pid, signal.SIGKILL)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OBSERVATOIRE_", "DAGSTER_"))}


def ui_refused(data: Path) -> str:
    """Run `observatoire ui` on `data`; it must exit 1 quickly, starting nothing. Its stderr."""
    port = free_port()
    marker = f"DAGSTER_HOME={data / 'dagster'}"
    log = data.parent / "ui.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(BIN / "observatoire"), "ui", "--port", str(port),
                                 "--data-dir", str(data)], env=clean_env(), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True,
                                preexec_fn=restore_signals)  # noqa: PLW1509 - before exec
    try:
        try:
            code = proc.wait(timeout=45)
        except subprocess.TimeoutExpired:
            code = None
        said = " ".join(log.read_text(errors="replace").split())  # rich wraps long lines
        assert code == 1, f"ui started beside a running daemon (exit {code}): {said[-1500:]}"
        assert processes_with(marker) == [], "ui started something"
        with socket.socket() as s, pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", port))
        return said
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in processes_with(marker):   # dagster dev's children (old code)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def fresh_heartbeat(dagster_home: Path, age_s: float) -> float:
    from dagster import DagsterInstance
    from dagster._daemon.types import DaemonHeartbeat

    from dagster_project.defs.instance import ensure_instance

    ensure_instance(dagster_home)
    beat = time.time() - age_s
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.add_daemon_heartbeat(DaemonHeartbeat(beat, "SENSOR", "another-daemon", None))
    return beat


def test_ui_refuses_while_a_daemon_heartbeat_is_fresh(tmp_path):
    """A daemon the lock does not know of (a bare dagster dev, a serve killed a moment ago)
    beat 10 s ago: ui says so and starts nothing."""
    fresh_heartbeat(tmp_path / "data" / "dagster", age_s=10)
    said = ui_refused(tmp_path / "data")
    assert "heartbeat" in said and "second daemon" in said, said


def test_ui_refuses_while_serve_runs_and_names_serves_ui(tmp_path):
    """serve holds the daemon lock from its first second (its daemon has not beaten yet)."""
    home = tmp_path / "data" / "dagster"
    with supervisor.DaemonLock(home, "serve", "http://127.0.0.1:3000").acquire():
        said = ui_refused(tmp_path / "data")
    assert f"observatoire serve (pid {os.getpid()})" in said, said
    assert "http://127.0.0.1:3000" in said and "second daemon" in said, said


def test_a_daemon_is_running_elsewhere_only_while_its_heartbeat_is_fresh(tmp_path):
    home = tmp_path / "dagster"
    assert supervisor.daemon_elsewhere(home) is None          # nothing ever ran here
    beat = fresh_heartbeat(home, age_s=10)
    assert "heartbeat 10 s ago" in supervisor.daemon_elsewhere(home, now=beat + 10)
    # stale: the daemon stopped long ago
    assert supervisor.daemon_elsewhere(home, now=beat + supervisor.HEARTBEAT_FRESH_S + 1) is None
    # fresh, but the serve that ran it has stopped since (it records when): ui may start
    with supervisor.DaemonLock(home, "serve").acquire() as lock:
        assert "observatoire serve" in supervisor.daemon_elsewhere(home)
    assert lock.state["stopped_at"] > beat
    assert supervisor.daemon_elsewhere(home, now=beat + 10) is None
