"""`observatoire`: run the pipeline, export a month, draw a chart, open the Dagster UI."""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from . import months as m

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Observatoire: monthly Instagram rankings of French local authorities.")
console = Console(stderr=True)


def _add_subcommands() -> None:
    from .accounts.cli import app as accounts_app

    app.add_typer(accounts_app, name="accounts")


_add_subcommands()

STEPS = {  # Dagster step key → what the user sees
    "landing__instagram_snapshots": "collect snapshots",
    "raw__instagram": "load into raw",
    "observatoire_dbt": "dbt build (models + tests)",
    "published__warehouse": "publish analysts' copy",
    "exports__monthly_exports": "export CSV / report",
    "site__public_site": "build the web site",
}


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=1)


def configure(data_dir: Path | None) -> Path:
    """Set the environment every later import reads; returns the data dir."""
    if data_dir is not None:
        os.environ["OBSERVATOIRE_DATA_DIR"] = str(Path(data_dir).resolve())
    from .defs.instance import ensure_instance
    from .settings import load_settings

    settings = load_settings()
    os.environ["OBSERVATOIRE_DATA_DIR"] = str(settings.data_dir)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    # A range run plans one event per asset instead of one per asset and month (SQLite
    # storage writes ~50 events/s: 109 months x 9 assets would cost ~20 s before starting).
    os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_instance(settings.dagster_home)
    return settings.data_dir


def resolve_range(source: str, first: str | None, last: str | None,
                  today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The month range of a run, validated (pure: unit-tested)."""
    current = m.current_month(today)
    if source == "graph_api":
        asked = [m.parse_month(given) for given in (first, last) if given]
        m.require_current_month(asked or [current], today)
        return current, current
    start = m.parse_month(first) if first else m.FIRST_MONTH
    end = m.parse_month(last) if last else m.last_complete_month(today)
    if start < m.FIRST_MONTH:
        raise ValueError(f"--from {m.month_key(start)}: the observatory starts in 2017-10")
    if end > current:
        raise ValueError(f"--to {m.month_key(end)} is in the future (current month: "
                         f"{m.month_key(current)})")
    if start > end:
        raise ValueError(f"--from {m.month_key(start)} is after --to {m.month_key(end)}")
    return start, end


def ensure_manifest() -> None:
    from .settings import DBT_PROJECT_DIR

    if not (DBT_PROJECT_DIR / "target" / "manifest.json").exists():
        from .dbt_manifest import run_dbt

        console.print("building the dbt manifest (first run)…")
        run_dbt(["parse", "--quiet"])


def execute(first: dt.date, last: dt.date, resource_config: dict, *, full_refresh: bool = False,
            quiet: bool = False):
    """Run the `monthly_pipeline` job over [first, last] as ONE Dagster run in DAGSTER_HOME."""
    import logging
    import uuid

    from dagster import DagsterEventType, DagsterInstance

    ensure_manifest()
    from .definitions import defs
    from .defs.automation import PID_TAG

    for name in ("dagster", "dagster_dbt"):
        logging.getLogger(name).setLevel(logging.WARNING)
    job = defs.resolve_job_def("monthly_pipeline")
    instance = DagsterInstance.get()
    recover_dead_cli_runs(instance)
    run_id = str(uuid.uuid4())
    run_config = {"loggers": {"console": {"config": {"log_level": "WARNING"}}},
                  "resources": {"observatoire": {"config": resource_config}},
                  "ops": {"observatoire_dbt": {"config": {"full_refresh": full_refresh}}}}
    tags = {ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: last.isoformat(), "observatoire/cli": "run",
            PID_TAG: str(os.getpid())}
    box: dict = {}

    from .settings import load_settings

    log_dir = load_settings().data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"run-{run_id}.log"

    def target() -> None:
        # dbt's own log goes to a file; the terminal shows the progress and the summary.
        with open(log_path, "w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
            try:
                box["result"] = job.execute_in_process(
                    run_config=run_config, instance=instance, run_id=run_id, tags=tags,
                    raise_on_error=False)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                box["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    started = time.monotonic()
    worker.start()
    FINISHED = {DagsterEventType.STEP_SUCCESS: "ok", DagsterEventType.STEP_FAILURE: "FAILED",
                DagsterEventType.STEP_SKIPPED: "skipped"}
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} steps"), TimeElapsedColumn(),
                  console=console, disable=quiet, transient=False) as progress:
        task = progress.add_task("starting", total=len(STEPS))
        cursor = None

        def poll() -> None:
            # Only the step events, from where the last poll stopped: a range run logs
            # thousands of events, and reading them all twice a second took the GIL from
            # the run itself.
            nonlocal cursor
            page = instance.get_records_for_run(run_id, cursor=cursor,
                                                of_type={DagsterEventType.STEP_START, *FINISHED})
            for rec in page.records:
                ev = rec.event_log_entry.dagster_event
                if ev is None or ev.step_key is None:
                    continue
                label = STEPS.get(ev.step_key, ev.step_key)
                if ev.event_type == DagsterEventType.STEP_START:
                    progress.update(task, description=label)
                else:
                    progress.advance(task)
                    progress.console.print(f"  {label}: {FINISHED[ev.event_type]} "
                                           f"({time.monotonic() - started:.0f} s)")
            cursor = page.cursor

        while worker.is_alive():
            poll()
            worker.join(timeout=0.5)
        poll()
    if "error" in box:
        raise box["error"]
    result = box["result"]
    return result, run_id, time.monotonic() - started


# The run tags with which Dagster itself launches a single-run backfill over a range (the
# same strings the UI's backfill daemon writes; Dagster exports no public name for them).
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"


def recover_dead_cli_runs(instance) -> list[str]:
    """Mark runs whose process died (killed, machine crash) as failed and free their
    `warehouse` pool slots; otherwise the next run would wait for those slots forever."""
    from .defs.automation import recover_dead_runs

    recovered = recover_dead_runs(instance)
    for run_id, pid in recovered:
        console.print(f"[yellow]note:[/] run {run_id} had died mid-run (pid {pid}): "
                      "marked failed, its warehouse slot freed")
    return [run_id for run_id, _ in recovered]


def _failure_message(result) -> str:
    for ev in result.all_events:
        if ev.is_step_failure and ev.step_failure_data and ev.step_failure_data.error:
            err = ev.step_failure_data.error
            cause = err
            while cause.cause is not None:
                cause = cause.cause
            msg = cause.message.strip().splitlines()[-1] if cause.message.strip() else err.message
            return f"step {ev.step_key} failed: {msg}"
    return "the run failed (see the Dagster UI for the event log)"


def summary(first: dt.date, last: dt.date) -> dict:
    from .settings import load_settings
    from .warehouse import connect

    s = load_settings()
    with connect(s.published_warehouse, read_only=True) as con:
        counts = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in (
            "raw.snapshots", "raw.media", "raw.rejected_lines", "marts.dim_territories",
            "marts.fct_account_monthly", "marts.fct_monthly_rankings", "marts.account_alerts")}
        per_cat = con.execute("""
            select category, count(*) from marts.fct_monthly_rankings where month = ?
            group by 1 order by 1""", [last]).fetchall()
        months = con.execute("""select count(distinct month) from marts.fct_monthly_rankings
            where month between ? and ?""", [first, last]).fetchone()[0]
        demo = con.execute("""select bool_or(is_demo) from marts.fct_monthly_rankings
            where month between ? and ?""", [first, last]).fetchone()[0]
    return {"counts": counts, "per_category": dict(per_cat), "months": months, "demo": bool(demo),
            "warehouse": s.warehouse, "published": s.published_warehouse,
            "exports": s.exports_dir}


@app.command()
def run(
    from_: Annotated[str | None, typer.Option("--from", help="First month YYYY-MM (default 2017-10).")] = None,
    to: Annotated[str | None, typer.Option(help="Last month YYYY-MM (default: last complete month).")] = None,
    source: Annotated[str, typer.Option(help="demo | landing | graph_api")] = "demo",
    accounts: Annotated[Path | None, typer.Option(help="Accounts registry CSV (env OBSERVATOIRE_ACCOUNTS).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder (env OBSERVATOIRE_DATA_DIR, default ./data).")] = None,
    scale: Annotated[bool, typer.Option(help="Demo: every territory gets an account (benchmark).")] = False,
    full_refresh: Annotated[bool, typer.Option(help="Rebuild the marts over every month.")] = False,
) -> None:
    """Collect, load, transform, publish and export every month of the range, as one Dagster run."""
    from .defs.resources import SOURCES

    if source not in SOURCES:
        _fail(f"unknown source {source!r}: expected one of {', '.join(SOURCES)}")
    try:
        first, last = resolve_range(source, from_, to)
    except ValueError as exc:
        _fail(str(exc))
    data = configure(data_dir)
    accounts = accounts or (Path(os.environ["OBSERVATOIRE_ACCOUNTS"])
                            if os.environ.get("OBSERVATOIRE_ACCOUNTS") else None)
    if accounts is not None and not accounts.exists():
        _fail(f"accounts registry not found: {accounts}")
    console.print(f"[bold]observatoire run[/] {m.month_key(first)} → {m.month_key(last)} "
                  f"({len(m.month_range(first, last))} months), source [bold]{source}[/], data in {data}")
    resource_config = {"data_dir": str(data), "source": source,
                       "accounts_file": str(accounts.resolve()) if accounts else "", "scale": scale}
    result, run_id, elapsed = execute(first, last, resource_config, full_refresh=full_refresh)
    if not result.success:
        _fail(f"{_failure_message(result)}\n  run {run_id} is in the Dagster UI "
              f"(observatoire ui) with its full event log; dbt's log: "
              f"{data / 'logs' / f'run-{run_id}.log'}")
    s = summary(first, last)
    c = s["counts"]
    console.print(f"\n[bold green]done[/] in {elapsed:.0f} s — run {run_id}")
    console.print(f"  months ranked: {s['months']}   "
                  f"{'[bold yellow]DEMO DATA (simulated)[/]' if s['demo'] else 'real data'}")
    console.print(f"  snapshots {c['raw.snapshots']:,}  posts {c['raw.media']:,}  "
                  f"rejected lines {c['raw.rejected_lines']:,}")
    console.print(f"  account-months {c['marts.fct_account_monthly']:,}  ranking rows "
                  f"{c['marts.fct_monthly_rankings']:,}  alerts {c['marts.account_alerts']:,}")
    console.print("  accounts ranked in " + m.month_key(last) + ": "
                  + ", ".join(f"{k} {v}" for k, v in s["per_category"].items()))
    console.print(f"  warehouse  {s['warehouse']}\n  analysts   {s['published']} (read-only copy)"
                  f"\n  exports    {s['exports']}/{m.month_key(last)}/\n  UI         observatoire ui")


@app.command()
def export(
    month: Annotated[str, typer.Option(help="Month YYYY-MM.")],
    dialect: Annotated[str, typer.Option(help="excel-fr (default) | rfc4180")] = "excel-fr",
    data_dir: Annotated[Path | None, typer.Option(help="Data folder.")] = None,
    report: Annotated[bool, typer.Option(help="Also render charts and rapport.html.")] = True,
    departement: Annotated[str | None, typer.Option(
        help="Write only this département's file (INSEE code: 32, 2A, 971).")] = None,
    region: Annotated[str | None, typer.Option(
        help="Write only this région's file (INSEE code: 76).")] = None,
) -> None:
    """Write the month's CSV files (Top N per category, one per département and région,
    alertes.csv, LISEZMOI.txt) and report; or one area's file."""
    from .exports import export_month
    from .exports.csv_export import export_area
    from .exports.report import render_report
    from .settings import load_settings

    try:
        mo = m.parse_month(month)
    except ValueError as exc:
        _fail(str(exc))
    if departement is not None and region is not None:
        _fail("give --departement or --region, not both")
    configure(data_dir)
    s = load_settings()
    source = s.published_warehouse if s.published_warehouse.exists() else s.warehouse
    if not source.exists():
        _fail(f"no warehouse in {s.data_dir}: run `observatoire run` first")
    try:
        if departement is not None or region is not None:
            kind, code = ("departement", departement) if departement is not None else ("region", region)
            files = [export_area(source, mo, s.exports_dir, kind, code.strip().upper(),
                                 dialect=dialect)]
        else:
            files = export_month(source, mo, s.exports_dir, dialect=dialect)
            if report:
                files.append(render_report(source, mo, s.exports_dir))
    except ValueError as exc:
        _fail(str(exc))
    areas = [f for f in files if f.parent.name in ("departements", "regions")]
    for f in files:
        if f not in areas or len(areas) == 1:
            console.print(f"  {f}")
    for folder in sorted({f.parent for f in areas} if len(areas) > 1 else set()):
        console.print(f"  {folder}/ ({sum(f.parent == folder for f in areas)} files)")


@app.command()
def site(
    month: Annotated[str | None, typer.Option(help="Rebuild only what month YYYY-MM changes.")] = None,
    serve: Annotated[bool, typer.Option(help="Then serve the site on 127.0.0.1 (Ctrl-C stops).")] = False,
    port: Annotated[int, typer.Option(help="Port of --serve.")] = 8000,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder.")] = None,
) -> None:
    """Build the static web site <data_dir>/site/ from the published warehouse."""
    from .settings import load_settings
    from .site import build_site

    try:
        months = [m.parse_month(month)] if month else None
    except ValueError as exc:
        _fail(str(exc))
    configure(data_dir)
    s = load_settings()
    source = s.published_warehouse if s.published_warehouse.exists() else s.warehouse
    if not source.exists():
        _fail(f"no warehouse in {s.data_dir}: run `observatoire run` first")
    try:
        stats = build_site(source, s.exports_dir, s.site_dir, months)
    except ValueError as exc:
        _fail(str(exc))
    console.print(f"  {s.site_dir}: {stats.pages:,} pages, {stats.files:,} files, "
                  f"{stats.bytes / 1e6:.1f} MB, {stats.months} month(s) rendered in {stats.seconds} s")
    if serve:
        serve_site(s.site_dir, port)


def serve_site(folder: Path, port: int) -> None:
    import functools
    import http.server

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as httpd:
        console.print(f"  serving {folder} on http://127.0.0.1:{port}/ (Ctrl-C stops)")
        with contextlib.suppress(KeyboardInterrupt):
            httpd.serve_forever()


@app.command()
def chart(
    territory: Annotated[str, typer.Option(help="territory_id, e.g. departement:32")],
    out: Annotated[Path | None, typer.Option(help="PNG path (default exports/territoires/<id>.png).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder.")] = None,
) -> None:
    """Draw a territory's follower curve and rank over time."""
    from .exports.charts import territory_chart
    from .settings import load_settings

    configure(data_dir)
    s = load_settings()
    source = s.published_warehouse if s.published_warehouse.exists() else s.warehouse
    out = out or s.exports_dir / "territoires" / f"{territory.replace(':', '_')}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        console.print(str(territory_chart(source, territory, out)))
    except ValueError as exc:
        _fail(str(exc))


@app.command()
def ui(
    data_dir: Annotated[Path | None, typer.Option(help="Data folder.")] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 3000,
) -> None:
    """Start the Dagster UI (dagster dev) on 127.0.0.1 with the project's DAGSTER_HOME."""
    configure(data_dir)
    from .dbt_manifest import run_dbt

    run_dbt(["parse", "--quiet"])  # the UI shows the models as they are now
    cmd = [str(Path(sys.executable).parent / "dagster"), "dev", "-m", "dagster_project.definitions",
           "-h", "127.0.0.1", "-p", str(port)]
    console.print(f"Dagster UI on http://127.0.0.1:{port} (DAGSTER_HOME={os.environ['DAGSTER_HOME']}); "
                  "Ctrl-C to stop")

    from .serve import start

    proc = start(cmd)
    code = wait_forwarding_signals(proc)
    raise typer.Exit(code=code)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface the webserver listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Webserver port.")] = 3000,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder (env OBSERVATOIRE_DATA_DIR).")] = None,
) -> None:
    """Run the observatory unattended: the Dagster webserver plus exactly one daemon,
    schedules and sensors on. SIGINT / SIGTERM / SIGHUP cancel the runs in flight and stop
    both (exit 0); if either dies, the other is stopped and serve exits 1."""
    from dagster import DagsterInstance

    from . import serve as supervisor
    from .dbt_manifest import run_dbt
    from .defs.automation import AUTOMATION_ENV

    def say(text: str) -> None:  # serve's output is a log (journald): one line per message
        console.print(text, soft_wrap=True)

    configure(data_dir)
    os.environ[AUTOMATION_ENV] = "on"
    run_dbt(["parse", "--quiet"])  # a freshly upgraded checkout starts with its own models
    # The instance is opened (created, migrated) once, before the webserver and the daemon
    # start: both at once on a fresh DAGSTER_HOME can each stamp the schema.
    with DagsterInstance.get():
        pass
    supervisor.recover(say)  # runs a crash or a reboot left in progress
    say(f"Observatoire serving on http://{host}:{port} (DAGSTER_HOME="
        f"{os.environ['DAGSTER_HOME']}): webserver + daemon, schedules and sensors on")
    procs = {}
    try:
        for name, cmd in supervisor.commands(host, port).items():
            procs[name] = supervisor.start(cmd)
    except OSError as exc:
        supervisor.stop_all(procs, signal.SIGTERM, 5.0, say)
        _fail(f"cannot start {name}: {exc}")
    code = supervisor.supervise(procs, say, sweep=lambda: supervisor.recover(say),
                                on_signal=lambda: supervisor.cancel_in_flight(say))
    say("Observatoire stopped." if code == 0 else
        "[bold red]Observatoire stopped: a process died[/] (exit 1)")
    raise typer.Exit(code=code)


@app.command()
def alert(
    test: Annotated[bool, typer.Option("--test", help="Send a test alert now.")] = False,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder (env OBSERVATOIRE_DATA_DIR).")] = None,
) -> None:
    """Alerts: the latest ones and how each was delivered; `--test` sends one to every
    configured channel (OBSERVATOIRE_ALERT_WEBHOOK_URL, OBSERVATOIRE_ALERT_SMTP_*)."""
    import socket

    from . import alerts
    from .settings import load_settings

    if data_dir is not None:
        os.environ["OBSERVATOIRE_DATA_DIR"] = str(Path(data_dir).resolve())
    settings = load_settings()
    try:
        channels = alerts.load_alert_settings().channels
    except ValueError as exc:
        _fail(str(exc))
    if test:
        if not channels:
            _fail("no alert channel: set OBSERVATOIRE_ALERT_WEBHOOK_URL and/or "
                  "OBSERVATOIRE_ALERT_SMTP_HOST (see docs/operations.md, Alerts)")
        now = dt.datetime.now(dt.UTC)
        alerts.record(settings.data_dir, f"test:{now.isoformat()}", alerts.Alert(
            "test", f"Observatoire: test alert from {socket.gethostname()} at "
            f"{now:%Y-%m-%d %H:%M} UTC: alerts reach you.",
            detail="Sent by `observatoire alert --test`."), now=now)
        done = alerts.deliver_pending(settings.data_dir)
        console.print(f"test alert: {done.sent} delivery(ies) sent, {done.failed} failed "
                      f"({', '.join(channels)}); {done.pending} still pending")
        if done.failed or not done.sent:
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

    from .serve import FORWARDED_SIGNALS, Signalled, killpg

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


@app.command()
def status(
    accounts: Annotated[Path | None, typer.Option(help="Accounts registry CSV (env OBSERVATOIRE_ACCOUNTS).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder (env OBSERVATOIRE_DATA_DIR, default ./data).")] = None,
    month: Annotated[str | None, typer.Option(help="Month YYYY-MM (default: the current month).")] = None,
) -> None:
    """Where the month's Graph API collection stands: accounts collected / total by status,
    requests used, last run, throttling holds, the plan for the rest of the collection
    window; the token's health (valid, expiry, scopes: Graph API debug_token); whether
    serve's daemon is alive and the schedules' next ticks."""
    from .collection import month_status
    from .collection_plan import load_plan_settings
    from .reference import territory_ids
    from .registry import read_registry
    from .settings import load_settings

    try:
        mo = m.parse_month(month) if month else m.current_month()
        plan_settings = load_plan_settings()
    except ValueError as exc:
        _fail(str(exc))
    if data_dir is not None:
        os.environ["OBSERVATOIRE_DATA_DIR"] = str(Path(data_dir).resolve())
    settings = load_settings()
    registry = accounts or settings.accounts_file
    try:
        accs, rejected = read_registry(registry, territory_ids())
    except FileNotFoundError as exc:
        _fail(str(exc))
    today = m.today_utc()
    st = month_status(accs, settings, mo, today=today, plan_settings=plan_settings)
    from .serve import status_rows
    from .sources.graph_api import check_token, token_rows

    token = token_rows(check_token(settings), dt.datetime.now(dt.UTC))
    print_status(st, registry, len(rejected), today,
                 [*token, *status_rows(settings.dagster_home)])


def print_status(st, registry: Path, rejected: int, today: dt.date,
                 extra: list[tuple[str, str]] = ()) -> None:
    from rich.table import Table

    from .collection_plan import window_start

    out = Console()
    b, total = st.by_status, st.total
    pct = f"{100 * st.collected / total:.0f} %" if total else "—"
    table = Table(title=f"Graph API collection {m.month_key(st.month)}", show_header=False,
                  title_justify="left", box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("registry", f"{registry} ({total:,} accounts"
                  + (f", {rejected} rejected row(s)" if rejected else "") + ")")
    table.add_row("collected", f"[bold]{st.collected:,} / {total:,}[/] ({pct})")
    table.add_row("  by status", f"ok {b['ok']:,} · not_found {b['not_found']:,} · "
                  f"not_business {b['not_business']:,}")
    table.add_row("  still to do", f"{st.remaining:,}: error {b['error']:,} (retried next run) · "
                  f"not collected yet {b['not_collected']:,}")
    table.add_row("requests used", f"{st.requests:,} in {len(st.runs)} run(s)")
    last = st.last_run
    if last is None:
        table.add_row("last run", "none this month")
    else:
        why = {None: "", "usage": " — still throttled by Meta when the run's time ran out",
               "call_budget": " — the run's call budget was spent",
               "time_budget": " — the run's time budget was spent",
               "quota": " — the day's quota was reached"}.get(last.stopped_reason,
                                                               f" — {last.stopped_reason}")
        detail = f"{last.collected:,} collected, {last.requests:,} requests" if last.ended_at else ""
        table.add_row("last run", f"{last.started_at} → {last.ended_at or '…'}  "
                      f"[bold]{last.outcome}[/]{why}" + (f"  ({detail})" if detail else "")
                      + (f"  {last.message}" if last.message else ""))
    holds, held_s = st.pauses
    last_holds = (f"; last run {last.pauses} ({last.paused_s:.0f} s)"
                  if last is not None and last.pauses else "")
    table.add_row("throttling", f"{holds} hold(s), {held_s:.0f} s waited this month{last_holds}"
                  if holds else "no hold this month")
    p = st.plan
    start = window_start(st.month, st.window_days)
    if st.month < m.current_month(today):
        window = f"over (the last {st.window_days} days, from {start})"
    elif p.days_left == 0:
        window = f"starts {start} (the last {st.window_days} days of the month)"
    else:
        window = f"day {st.window_days - p.days_left + 1} of {st.window_days} ({p.days_left} left, today included)"
    table.add_row("window", window)
    if p.calls_per_hour > 0:
        table.add_row("plan", f"{p.accounts_per_day:,} accounts/day ({p.calls_per_run:,} calls "
                      f"at {p.pace_calls_per_hour:.0f}/h of a {p.calls_per_hour:.0f}/h budget, "
                      f"{p.run_hours:.0f} h, {p.calls_per_account:.2f} calls/account)")
    else:
        table.add_row("plan", "no pacing (OBSERVATOIRE_GRAPH_CALLS_PER_HOUR=0)")
    if st.remaining == 0:
        verdict = "[green]every account is collected[/]"
    elif st.month < m.current_month(today):
        verdict = f"[red]{st.remaining:,} accounts were not collected[/]"
    elif p.feasible:
        verdict = f"[green]on track[/]: {p.days_needed} more run(s) needed"
    else:
        verdict = (f"[red]short[/]: the window can still collect {p.window_capacity:,} of "
                   f"{st.remaining:,} accounts (widen OBSERVATOIRE_COLLECTION_WINDOW_DAYS)")
    table.add_row("outlook", verdict)
    for label, value in extra:
        table.add_row(label, value)
    out.print(table)


def _add_archive_commands() -> None:
    from .archive_cli import register

    register(app)   # verify, backup


_add_archive_commands()


if __name__ == "__main__":
    app()
