"""`observatoire ui` serves the Dagster UI on 127.0.0.1 and stops cleanly on Ctrl-C (SIGINT)."""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ui, pytest.mark.slow, pytest.mark.timeout(300)]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def restore_signals() -> None:  # background shells start children with SIGINT ignored
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def test_ui_starts_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBSERVATOIRE_", "DAGSTER_"))}
    proc = subprocess.Popen([str(BIN / "observatoire"), "ui", "--port", str(port),
                             "--data-dir", str(tmp_path / "data")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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
        os.kill(proc.pid, signal.SIGINT)                 # Ctrl-C
        assert proc.wait(timeout=60) == 0
        with socket.socket() as s, pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", port))               # nothing listens any more
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
