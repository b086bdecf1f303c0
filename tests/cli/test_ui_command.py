"""`observatoire ui` serves the Dagster UI on 127.0.0.1 and, on SIGINT (Ctrl-C), SIGTERM
(timeout, systemd, docker stop) or SIGHUP (terminal closed), stops the whole `dagster dev`
process group: no process is left behind and the port is free again."""
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

pytestmark = [pytest.mark.ui, pytest.mark.slow, pytest.mark.timeout(300)]
BIN = Path(sys.executable).parent


def restore_signals() -> None:  # background shells start children with SIGINT ignored
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


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
