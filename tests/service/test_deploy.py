"""deploy/: the systemd units pass `systemd-analyze verify`, their command lines are ones
`serve` and `alert` accept, a serve that systemd gives up restarting starts the one-shot
unit that alerts (and its command line, as systemd splits it, delivers), and the environment
file example names only variables the code reads, with the code's defaults and no real
secret."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from webhook_receiver import WebhookReceiver

from dagster_project.cli.app import app
from dagster_project.collect.plan import PlanSettings, load_plan_settings
from dagster_project.service.alerts import load_alert_settings
from dagster_project.settings import DEFAULT_GRAPH_URL, load_settings

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "observatoire.service"
DOWN_UNIT = ROOT / "deploy" / "observatoire-down.service"
ENV_EXAMPLE = ROOT / "deploy" / "observatoire.env.example"
_LINE = re.compile(r"^#?([A-Z][A-Z0-9_]+)=(.*)$")


def env_lines() -> list[tuple[str, str, bool]]:
    """(name, value, set) for each variable line; set=False for a commented default."""
    out = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if (mt := _LINE.match(line)):
            out.append((mt.group(1), mt.group(2), not line.startswith("#")))
    return out


def unit_value(key: str) -> str:
    [value] = re.findall(rf"^{key}=(.*)$", UNIT.read_text(encoding="utf-8"), re.MULTILINE)
    return value


def unit_file(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as systemd reads it: {section: {key: [values, in order]}} (a key may be
    repeated; comment lines start with # or ;)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"{path.name}: {raw!r}"
        key, value = line.split("=", 1)
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(unit: dict, section: str, key: str) -> str:
    [value] = unit[section][key]
    return value


def shipped_for_this_machine(path: Path, tmp_path: Path) -> Path:
    """`path` as shipped except for what only the server has: /opt/observatoire's
    executable, the environment file and the service user."""
    import grp
    import pwd

    exe = tmp_path / "observatoire"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    text = path.read_text(encoding="utf-8")
    text = text.replace("/opt/observatoire/.venv/bin/observatoire", str(exe))
    text = text.replace("/etc/observatoire/observatoire.env", str(ENV_EXAMPLE))
    text = text.replace("WorkingDirectory=/opt/observatoire", f"WorkingDirectory={tmp_path}")
    text = re.sub(r"^User=.*$", f"User={pwd.getpwuid(os.getuid()).pw_name}", text, flags=re.MULTILINE)
    text = re.sub(r"^Group=.*$", f"Group={grp.getgrgid(os.getgid()).gr_name}", text, flags=re.MULTILINE)
    unit = tmp_path / path.name
    unit.write_text(text, encoding="utf-8")
    return unit


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not here")
def test_the_units_pass_systemd_analyze_verify(tmp_path):
    units = [shipped_for_this_machine(p, tmp_path) for p in (UNIT, DOWN_UNIT)]
    res = subprocess.run(["systemd-analyze", "verify", "--man=no", *map(str, units)],
                         check=False, capture_output=True, text=True, timeout=60)
    complaints = [ln for ln in (res.stdout + res.stderr).splitlines()
                  if any(str(u) in ln for u in units) or "observatoire" in ln]
    assert res.returncode == 0 and complaints == [], res.stdout + res.stderr
    # the check catches a mistyped key or value: it is not a rubber stamp
    for unit, good, typo, says in ((units[0], "Restart=on-failure", "Restar=on-failure",
                                    "Unknown key"),
                                   (units[1], "Type=oneshot", "Type=oneshott",
                                    "Failed to parse service type")):
        text = unit.read_text(encoding="utf-8")
        unit.write_text(text.replace(good, typo), encoding="utf-8")
        bad = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                             check=False, capture_output=True, text=True, timeout=60)
        unit.write_text(text, encoding="utf-8")
        assert says in bad.stdout + bad.stderr, bad.stdout + bad.stderr


def test_serve_down_for_good_starts_the_alerting_unit():
    """systemd starts OnFailure= units when the unit enters the failed state, which a unit
    with Restart= does only once its start limit is hit: the limit must be reachable by a
    serve that keeps failing, and the unit it starts must exist and alert."""
    serve, down = unit_file(UNIT), unit_file(DOWN_UNIT)
    assert one(serve, "Unit", "OnFailure") == DOWN_UNIT.name
    burst = int(one(serve, "Unit", "StartLimitBurst"))
    interval = int(one(serve, "Unit", "StartLimitIntervalSec"))
    restart_s = int(one(serve, "Service", "RestartSec"))
    assert 2 <= burst and burst * restart_s < interval, (burst, restart_s, interval)
    # the alert runs as serve does: same user, environment file (the channels), checkout
    assert one(down, "Service", "Type") == "oneshot"
    for key in ("User", "Group", "WorkingDirectory", "EnvironmentFile"):
        assert one(down, "Service", key) == one(serve, "Service", key), key
    assert "Install" not in down                   # never enabled: started by OnFailure= only
    assert "/var/lib/observatoire" in one(down, "Service", "ReadWritePaths").split()
    argv = shlex.split(one(down, "Service", "ExecStart"))
    assert argv[0] == one(serve, "Service", "ExecStart").split()[0]
    assert argv[1] == "alert"
    alert = typer.main.get_command(app).commands["alert"]
    options = {o for p in alert.params for o in p.opts}
    assert {a for a in argv[2:] if a.startswith("--")} <= options
    text = argv[argv.index("--send") + 1]
    assert "serve is down on %H" in text and argv[argv.index("--event") + 1] == "serve_down"
    # the install steps copy both units
    header = UNIT.read_text(encoding="utf-8").split("[Unit]")[0]
    assert f"deploy/{DOWN_UNIT.name}" in header


def test_the_down_units_command_delivers_its_alert(tmp_path):
    """The ExecStart line as systemd would run it (%H the host name, MONITOR_* set by
    systemd for an OnFailure= unit, one argument per quoted word), against a real webhook."""
    line = one(unit_file(DOWN_UNIT), "Service", "ExecStart")
    monitor = {"MONITOR_SERVICE_RESULT": "start-limit-hit", "MONITOR_EXIT_CODE": "exited",
               "MONITOR_EXIT_STATUS": "1"}
    line = line.replace("%H", socket.gethostname())
    line = re.sub(r"\$\{(\w+)\}", lambda m: monitor[m.group(1)], line)
    argv = shlex.split(line)
    argv[0] = str(Path(sys.executable).parent / "observatoire")
    receiver = WebhookReceiver("/hooks/down")
    try:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OBSERVATOIRE_", "DAGSTER_", "INSTAGRAM_"))}
        env.update(OBSERVATOIRE_DATA_DIR=str(tmp_path / "data"),
                   OBSERVATOIRE_ALERT_WEBHOOK_URL=receiver.url)
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        receiver.close()
    [post] = receiver.bodies
    assert post["event"] == "serve_down", post
    assert post["text"].startswith(f"Observatoire: serve is down on {socket.gethostname()}: ")
    assert "(start-limit-hit exited 1)" in post["text"], post["text"]


def test_the_unit_runs_serve_with_options_it_accepts():
    exec_start = unit_value("ExecStart").split()
    assert exec_start[0] == "/opt/observatoire/.venv/bin/observatoire"
    assert exec_start[1] == "serve"
    serve = typer.main.get_command(app).commands["serve"]
    options = {o for p in serve.params for o in p.opts}
    assert {a for a in exec_start[2:] if a.startswith("--")} <= options
    assert unit_value("Restart") == "on-failure" and unit_value("KillMode") == "mixed"
    assert unit_value("EnvironmentFile") == "/etc/observatoire/observatoire.env"


def test_the_env_example_names_only_what_the_code_reads():
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "dagster_project").rglob(
        "*.py"))
    docs = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    names = [n for n, _, _ in env_lines()]
    assert len(names) == len(set(names))
    for name in names:
        alert_suffix = name.removeprefix("OBSERVATOIRE_ALERT_")
        assert f'"{name}"' in code or f'get("{alert_suffix}")' in code, f"{name} is read nowhere"
        assert name in docs or f"_{alert_suffix}" in docs, f"{name} is not in docs/operations.md"
    for name in ("INSTAGRAM_ACCESS_TOKEN", "INSTAGRAM_USER_ID", "OBSERVATOIRE_DATA_DIR",
                 "OBSERVATOIRE_BACKUP_DIR", "OBSERVATOIRE_ALERT_WEBHOOK_URL",
                 "OBSERVATOIRE_ALERT_SMTP_HOST", "INSTAGRAM_APP_ID", "INSTAGRAM_APP_SECRET"):
        assert name in names


def test_the_env_example_gives_the_code_defaults_and_no_secret():
    values = {n: v for n, v, _ in env_lines()}
    set_only = {n: v for n, v, on in env_lines() if on}
    # what is set loads cleanly (the placeholders are well-formed)
    settings = load_settings(set_only)
    assert str(settings.data_dir) == "/var/lib/observatoire/data"
    assert load_alert_settings(set_only).channels == ("webhook",)
    # the commented values are the defaults the code applies when they are unset
    plan_keys = [n for n in values if n.startswith(("OBSERVATOIRE_COLLECTION_",
                                                    "OBSERVATOIRE_GRAPH_"))]
    assert load_plan_settings({n: values[n] for n in plan_keys}) == PlanSettings()
    assert values["INSTAGRAM_GRAPH_URL"] == DEFAULT_GRAPH_URL
    smtp = {n: v for n, v in values.items() if n.startswith("OBSERVATOIRE_ALERT_SMTP_")}
    assert load_alert_settings(smtp).smtp_port == 587
    # no real secret: tokens and passwords are placeholders
    for name in ("INSTAGRAM_ACCESS_TOKEN", "INSTAGRAM_APP_SECRET",
                 "OBSERVATOIRE_ALERT_SMTP_PASSWORD", "OBSERVATOIRE_ALERT_WEBHOOK_URL"):
        assert "replace" in values[name], name
    assert not re.search(r"EAA[A-Za-z0-9]{20,}", ENV_EXAMPLE.read_text(encoding="utf-8"))
