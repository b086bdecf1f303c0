"""deploy/: the systemd unit passes `systemd-analyze verify`, its command line is one `serve`
accepts, and the environment file example names only variables the code reads, with the
code's defaults and no real secret."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import typer.main

from dagster_project.cli.app import app
from dagster_project.collect.plan import PlanSettings, load_plan_settings
from dagster_project.service.alerts import load_alert_settings
from dagster_project.settings import DEFAULT_GRAPH_URL, load_settings

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "observatoire.service"
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


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not here")
def test_the_unit_passes_systemd_analyze_verify(tmp_path):
    """Verified as shipped except for what only the server has: /opt/observatoire's
    executable, the environment file and the service user."""
    import grp
    import os
    import pwd

    exe = tmp_path / "observatoire"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    text = UNIT.read_text(encoding="utf-8")
    text = text.replace("/opt/observatoire/.venv/bin/observatoire", str(exe))
    text = text.replace("/etc/observatoire/observatoire.env", str(ENV_EXAMPLE))
    text = text.replace("WorkingDirectory=/opt/observatoire", f"WorkingDirectory={tmp_path}")
    text = re.sub(r"^User=.*$", f"User={pwd.getpwuid(os.getuid()).pw_name}", text, flags=re.MULTILINE)
    text = re.sub(r"^Group=.*$", f"Group={grp.getgrgid(os.getgid()).gr_name}", text, flags=re.MULTILINE)
    unit = tmp_path / "observatoire.service"
    unit.write_text(text, encoding="utf-8")
    res = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                         check=False, capture_output=True, text=True, timeout=60)
    complaints = [ln for ln in (res.stdout + res.stderr).splitlines() if str(unit) in ln
                  or "observatoire" in ln]
    assert res.returncode == 0 and complaints == [], res.stdout + res.stderr
    # the check catches a mistyped key: it is not a rubber stamp
    unit.write_text(text.replace("Restart=on-failure", "Restar=on-failure"), encoding="utf-8")
    bad = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                         check=False, capture_output=True, text=True, timeout=60)
    assert "Unknown key" in bad.stdout + bad.stderr


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
