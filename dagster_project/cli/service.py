"""`observatoire ui`, `serve` and `alert`: the Dagster UI, the supervised service, its alerts."""
from __future__ import annotations

import datetime as dt
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from dagster_project.cli.common import configure, console, fail, settings_for


def ui(
    data_dir: Annotated[Path | None, typer.Option(help="Data folder.")] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 3000,
) -> None:
    """Start the Dagster UI (dagster dev) on 127.0.0.1 with the project's DAGSTER_HOME.
    Refused (exit 1) while `observatoire serve`, or another ui, runs a daemon on the same
    DAGSTER_HOME: dagster dev starts a daemon of its own, and two daemons run every schedule
    twice. Use the running serve's UI instead."""
    configure(data_dir)
    from dagster_project.service import serve as supervisor

    home = Path(os.environ["DAGSTER_HOME"])
    url = f"http://127.0.0.1:{port}"
    busy = supervisor.daemon_elsewhere(home)
    try:
        lock = None if busy else supervisor.DaemonLock(home, "ui", url).acquire()
    except supervisor.DaemonRunning as exc:
        busy = str(exc)
    if busy:
        fail(f"{busy}.\n`observatoire ui` would start a second daemon (dagster dev starts one): "
             "every schedule and sensor would run twice. Open the running serve's UI "
             "instead, or stop what runs first.")
    with lock:
        from dagster_project.defs.dbt_manifest import parse_manifest

        parse_manifest()  # the UI shows the models as they are now
        cmd = [str(Path(sys.executable).parent / "dagster"), "dev", "-m",
               "dagster_project.definitions", "-h", "127.0.0.1", "-p", str(port)]
        console.print(f"Dagster UI on {url} (DAGSTER_HOME={home}); Ctrl-C to stop")
        # SIGTERM to dagster dev if this process dies (even by SIGKILL): it stops its own
        # webserver, daemon and code servers
        proc = supervisor.start(cmd, deathsig=signal.SIGTERM)
        lock.add_group(proc.pid)
        code = wait_forwarding_signals(proc)
    raise typer.Exit(code=code)


def serve(
    host: Annotated[str, typer.Option(help="Interface the webserver listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Webserver port.")] = 3000,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder (env OBSERVATOIRE_DATA_DIR).")] = None,
) -> None:
    """Run the observatory unattended: the Dagster webserver plus exactly one daemon,
    schedules and sensors on. SIGINT / SIGTERM / SIGHUP cancel the runs in flight and stop
    both (exit 0); if either dies, the other is stopped and serve exits 1."""
    from dagster import DagsterInstance

    from dagster_project.defs.automation import AUTOMATION_ENV
    from dagster_project.defs.dbt_manifest import parse_manifest
    from dagster_project.service import serve as supervisor

    def say(text: str) -> None:  # serve's output is a log (journald): one line per message
        console.print(text, soft_wrap=True)

    configure(data_dir)
    os.environ[AUTOMATION_ENV] = "on"
    home = Path(os.environ["DAGSTER_HOME"])
    try:  # one daemon per DAGSTER_HOME (stops what a killed serve left, if anything)
        lock = supervisor.DaemonLock(home, "serve", f"http://{host}:{port}").acquire(say)
    except supervisor.DaemonRunning as exc:
        fail(f"{exc}: a second daemon would run every schedule twice. Stop it first.")

    def prepare() -> None:
        say(f"Observatoire starting (DAGSTER_HOME={home}): dbt manifest, Dagster instance, "
            "runs left in progress…")
        parse_manifest()  # a freshly upgraded checkout starts with its own models
        # The instance is opened (created, migrated) once, before the webserver and the
        # daemon start: both at once on a fresh DAGSTER_HOME can each stamp the schema.
        with DagsterInstance.get():
            pass
        supervisor.recover(say)  # runs a crash or a reboot left in progress
        say(f"Observatoire serving on http://{host}:{port} (DAGSTER_HOME={home}): webserver"
            " + daemon, schedules and sensors on")

    with lock:
        try:
            code = supervisor.run(supervisor.commands(host, port), say, prepare=prepare,
                                  sweep=lambda: supervisor.recover(say),
                                  on_signal=lambda: supervisor.cancel_in_flight(say),
                                  on_started=lock.add_group, dagster_home=home)
        except OSError as exc:
            fail(f"cannot start the webserver or the daemon: {exc}")
    say("Observatoire stopped." if code == 0 else
        "[bold red]Observatoire stopped: a process died[/] (exit 1)")
    raise typer.Exit(code=code)


def alert(
    test: Annotated[bool, typer.Option("--test", help="Send a test alert now.")] = False,
    send: Annotated[str | None, typer.Option(
        "--send", metavar="TEXT", help="Send this alert now (systemd's observatoire-down.service "
        "uses it when serve is down: no alert comes from inside serve then).")] = None,
    event: Annotated[str, typer.Option(help="The event of the --send alert.")] = "serve_down",
    data_dir: Annotated[Path | None, typer.Option(help="Data folder (env OBSERVATOIRE_DATA_DIR).")] = None,
) -> None:
    """Alerts: the latest ones and how each was delivered; `--test` sends one to every
    configured channel (OBSERVATOIRE_ALERT_WEBHOOK_URL, OBSERVATOIRE_ALERT_SMTP_*);
    `--send TEXT` records an alert (event `serve_down` unless --event) and delivers it (exit
    1 if no channel took it: it stays in the outbox, which serve retries when it runs)."""
    import socket

    from dagster_project.service import alerts

    settings = settings_for(data_dir)
    try:
        channels = alerts.load_alert_settings().channels
    except ValueError as exc:
        fail(str(exc))
    if test or send is not None:
        if not channels:
            fail("no alert channel: set OBSERVATOIRE_ALERT_WEBHOOK_URL and/or "
                  "OBSERVATOIRE_ALERT_SMTP_HOST (see docs/operations.md, Alerts)")
        now = dt.datetime.now(dt.UTC)
        if send is not None:  # the key names this occurrence: each call is sent once
            alerts.record(settings.data_dir, f"{event}:{now.isoformat()}",
                          alerts.Alert(event, send), now=now)
        else:
            alerts.record(settings.data_dir, f"test:{now.isoformat()}", alerts.Alert(
                "test", f"Observatoire: test alert from {socket.gethostname()} at "
                f"{now:%Y-%m-%d %H:%M} UTC: alerts reach you.",
                detail="Sent by `observatoire alert --test`."), now=now)
        done = alerts.deliver_pending(settings.data_dir)
        console.print(f"{'alert' if send is not None else 'test alert'}: {done.sent} "
                      f"delivery(ies) sent, {done.failed} failed "
                      f"({', '.join(channels)}); {done.pending} still pending")
        if not done.sent or (test and done.failed):  # --send: delivered on some channel
            raise typer.Exit(code=1)
        return
    rows = alerts.recent(settings.data_dir)
    if not rows:
        console.print(f"no alert recorded in {alerts.outbox_path(settings.data_dir)}")
    for row in rows:
        states = ", ".join(f"{c} {d['state']}" + (f" ({d['last_error']})" if d["last_error"]
                                                   else "") for c, d in row["channels"].items())
        console.print(f"{row['created_at']}  {row['event']}  {row['text']}  — {states}",
                      markup=False, highlight=False)


UI_GRACE_S = 30.0


def wait_forwarding_signals(proc, grace_s: float = UI_GRACE_S) -> int:
    """Wait for `proc`; on SIGINT, SIGTERM or SIGHUP forward the signal to its whole process
    group (dagster dev, its webserver, daemon and code servers), wait up to `grace_s`, then
    SIGKILL whatever is left. Returns the exit code to use."""
    import subprocess

    from dagster_project.service.serve import FORWARDED_SIGNALS, Signalled, killpg

    def handler(signum, _frame) -> None:
        raise Signalled(signum)

    previous = {sig: signal.signal(sig, handler) for sig in FORWARDED_SIGNALS}
    try:
        try:
            return proc.wait() or 0
        except Signalled as got:
            for sig in FORWARDED_SIGNALS:  # a second signal must not interrupt the clean-up
                signal.signal(sig, signal.SIG_IGN)
            name = signal.Signals(got.signum).name
            console.print(f"{name} received: stopping the Dagster UI (process group {proc.pid})…")
            killpg(proc.pid, got.signum)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                console.print(f"[yellow]still running after {grace_s:.0f} s: killing it[/]")
            killpg(proc.pid, signal.SIGKILL)  # stragglers of the group, if any
            proc.wait()
            console.print("Dagster UI stopped.")
            return 0 if got.signum == signal.SIGINT else 128 + got.signum
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
