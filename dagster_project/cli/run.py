"""`observatoire run` (the pipeline over a range, as one Dagster run) and `observatoire status`
(where the month's Graph API collection stands, and every other part it can read)."""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from dagster_project import months as m
from dagster_project.cli.common import configure, console, ensure_manifest, fail, settings_for

STEPS = {  # Dagster step key → what the user sees
    "landing__instagram_snapshots": "collect snapshots",
    "raw__instagram": "load into raw",
    "observatoire_dbt": "dbt build (models + tests)",
    "published__warehouse": "publish analysts' copy",
    "exports__monthly_exports": "export CSV / report",
    "site__public_site": "build the web site",
}


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


def execute(first: dt.date, last: dt.date, resource_config: dict, *, full_refresh: bool = False,
            quiet: bool = False):
    """Run the `monthly_pipeline` job over [first, last] as ONE Dagster run in DAGSTER_HOME."""
    import logging
    import uuid

    from dagster import DagsterInstance

    ensure_manifest()
    from dagster_project.definitions import defs
    from dagster_project.defs.automation import PID_TAG

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

    from dagster_project.settings import load_settings

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
    show_progress(instance, run_id, worker, started, quiet)
    if "error" in box:
        raise box["error"]
    result = box["result"]
    return result, run_id, time.monotonic() - started


def show_progress(instance, run_id: str, worker, started: float, quiet: bool) -> None:
    """One line per finished step of the run, and a progress bar, until `worker` ends."""
    from dagster import DagsterEventType

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


# The run tags with which Dagster itself launches a single-run backfill over a range (the
# same strings the UI's backfill daemon writes; Dagster exports no public name for them).
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"


ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"


def recover_dead_cli_runs(instance) -> list[str]:
    """Mark runs whose process died (killed, machine crash) as failed and free their
    `warehouse` pool slots; otherwise the next run would wait for those slots forever."""
    from dagster_project.defs.automation import recover_dead_runs

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
    from dagster_project.settings import load_settings
    from dagster_project.warehouse import connect

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
        dropped = con.execute("""select coalesce(sum(permalinks_dropped), 0) from raw.load_files
            where month between ? and ?""", [first, last]).fetchone()[0]
    return {"counts": counts, "per_category": dict(per_cat), "months": months, "demo": bool(demo),
            "permalinks_dropped": int(dropped),
            "warehouse": s.warehouse, "published": s.published_warehouse,
            "exports": s.exports_dir}


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
    from dagster_project.defs.resources import SOURCES

    if source not in SOURCES:
        fail(f"unknown source {source!r}: expected one of {', '.join(SOURCES)}")
    try:
        first, last = resolve_range(source, from_, to)
    except ValueError as exc:
        fail(str(exc))
    data = configure(data_dir)
    accounts = accounts or (Path(os.environ["OBSERVATOIRE_ACCOUNTS"])
                            if os.environ.get("OBSERVATOIRE_ACCOUNTS") else None)
    if accounts is not None and not accounts.exists():
        fail(f"accounts registry not found: {accounts}")
    console.print(f"[bold]observatoire run[/] {m.month_key(first)} → {m.month_key(last)} "
                  f"({len(m.month_range(first, last))} months), source [bold]{source}[/], data in {data}")
    resource_config = {"data_dir": str(data), "source": source,
                       "accounts_file": str(accounts.resolve()) if accounts else "", "scale": scale}
    result, run_id, elapsed = execute(first, last, resource_config, full_refresh=full_refresh)
    if not result.success:
        fail(f"{_failure_message(result)}\n  run {run_id} is in the Dagster UI "
              f"(observatoire ui) with its full event log; dbt's log: "
              f"{data / 'logs' / f'run-{run_id}.log'}")
    s = summary(first, last)
    c = s["counts"]
    console.print(f"\n[bold green]done[/] in {elapsed:.0f} s — run {run_id}")
    console.print(f"  months ranked: {s['months']}   "
                  f"{'[bold yellow]DEMO DATA (simulated)[/]' if s['demo'] else 'real data'}")
    console.print(f"  snapshots {c['raw.snapshots']:,}  posts {c['raw.media']:,}  "
                  f"rejected lines {c['raw.rejected_lines']:,}"
                  + (f"  permalinks dropped {s['permalinks_dropped']:,} (not an Instagram post "
                     "URL: docs/landing-format.md)" if s["permalinks_dropped"] else ""))
    console.print(f"  account-months {c['marts.fct_account_monthly']:,}  ranking rows "
                  f"{c['marts.fct_monthly_rankings']:,}  alerts {c['marts.account_alerts']:,}")
    console.print("  accounts ranked in " + m.month_key(last) + ": "
                  + ", ".join(f"{k} {v}" for k, v in s["per_category"].items()))
    console.print(f"  warehouse  {s['warehouse']}\n  analysts   {s['published']} (read-only copy)"
                  f"\n  exports    {s['exports']}/{m.month_key(last)}/\n  UI         observatoire ui")


def status(
    accounts: Annotated[Path | None, typer.Option(help="Accounts registry CSV (env OBSERVATOIRE_ACCOUNTS).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder (env OBSERVATOIRE_DATA_DIR, default ./data).")] = None,
    month: Annotated[str | None, typer.Option(help="Month YYYY-MM (default: the current month).")] = None,
) -> None:
    """Every part of the observatory that can be read, each on its own: the month's Graph API
    collection (accounts collected / total by status, requests used, last run, throttling
    holds, the plan for the rest of the window); the token's health (valid, expiry, scopes:
    Graph API debug_token); whether serve's daemon is alive and the schedules' next ticks;
    the landing archive and its nightly check; the warehouse; the published copy's newest
    month. A missing or unreadable part is named on its row; the others still show.

    Exit code: 0 when every part could be read, a data folder not built yet included (no
    warehouse, no published copy, serve never started); 1 when the accounts registry is
    missing or a part could not be read (named on stderr), or --month is invalid."""
    from dagster_project.service import status as parts

    try:
        mo = m.parse_month(month) if month else m.current_month()
    except ValueError as exc:
        fail(str(exc))
    settings = settings_for(data_dir)
    registry = accounts or settings.accounts_file
    today, now = m.today_utc(), dt.datetime.now(dt.UTC)

    def token() -> parts.Part:
        from dagster_project.collect.graph_api import check_token, token_rows

        return parts.Part(token_rows(check_token(settings), now))

    def serve() -> parts.Part:
        return parts.Part(parts.status_rows(settings.dagster_home))

    def archive() -> parts.Part:
        from dagster_project.archive.verify import archive_months

        return parts.Part(parts.archive_rows(settings.landing_dir,
                                             archive_months(settings.landing_dir)))

    found = [
        parts.guarded("registry", lambda: collection_part(registry, settings, mo, today)),
        parts.guarded("token", token, secrets=[settings.access_token]),
        parts.guarded("serve", serve),
        parts.guarded("archive", archive),
        parts.guarded("  nightly check",
                      lambda: parts.nightly_part(settings.dagster_home, settings.data_dir)),
        parts.guarded("warehouse", lambda: parts.warehouse_part(settings.warehouse)),
        parts.guarded("published copy",
                      lambda: parts.published_part(settings.published_warehouse)),
    ]
    print_table(mo, [row for part in found for row in part.rows])
    problems = [part.problem for part in found if part.problem]
    if problems:
        console.print(f"[yellow]status incomplete:[/] {', '.join(problems)} (exit 1)")
        raise typer.Exit(code=1)


def collection_part(registry: Path, settings, mo: dt.date, today: dt.date):
    """The month's collection rows, or the missing registry named (needs the registry)."""
    from dagster_project.collect.plan import load_plan_settings
    from dagster_project.collect.window import month_status
    from dagster_project.registry.accounts import read_registry
    from dagster_project.registry.territories import territory_ids
    from dagster_project.service.status import Part, registry_missing

    if not Path(registry).exists():
        return registry_missing(registry)
    accs, rejected = read_registry(registry, territory_ids())
    st = month_status(accs, settings, mo, today=today, plan_settings=load_plan_settings())
    return Part(collection_rows(st, registry, len(rejected), today))


def print_table(month: dt.date, rows: list[tuple[str, str]]) -> None:
    """status's one table: (label, value) rows under the month's title."""
    from rich.table import Table

    table = Table(title=f"Graph API collection {m.month_key(month)}", show_header=False,
                  title_justify="left", box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for label, value in rows:
        table.add_row(label, value)
    Console().print(table)


def collection_rows(st, registry: Path, rejected: int,
                    today: dt.date) -> list[tuple[str, str]]:
    """Where the month's collection stands (pure)."""
    from dagster_project.collect.plan import window_start

    rows: list[tuple[str, str]] = []

    def add(label: str, value: str) -> None:
        rows.append((label, value))

    b, total = st.by_status, st.total
    pct = f"{100 * st.collected / total:.0f} %" if total else "—"
    add("registry", f"{registry} ({total:,} accounts"
        + (f", {rejected} rejected row(s)" if rejected else "") + ")")
    add("collected", f"[bold]{st.collected:,} / {total:,}[/] ({pct})")
    add("  by status", f"ok {b['ok']:,} · not_found {b['not_found']:,} · "
        f"not_business {b['not_business']:,}")
    add("  still to do", f"{st.remaining:,}: error {b['error']:,} (retried next run) · "
        f"not collected yet {b['not_collected']:,}")
    add("requests used", f"{st.requests:,} in {len(st.runs)} run(s)")
    last = st.last_run
    if last is None:
        add("last run", "none this month")
    else:
        why = {None: "", "usage": " — still throttled by Meta when the run's time ran out",
               "call_budget": " — the run's call budget was spent",
               "time_budget": " — the run's time budget was spent",
               "quota": " — the day's quota was reached"}.get(last.stopped_reason,
                                                               f" — {last.stopped_reason}")
        detail = f"{last.collected:,} collected, {last.requests:,} requests" if last.ended_at else ""
        add("last run", f"{last.started_at} → {last.ended_at or '…'}  "
            f"[bold]{last.outcome}[/]{why}" + (f"  ({detail})" if detail else "")
            + (f"  {last.message}" if last.message else ""))
    holds, held_s = st.pauses
    last_holds = (f"; last run {last.pauses} ({last.paused_s:.0f} s)"
                  if last is not None and last.pauses else "")
    add("throttling", f"{holds} hold(s), {held_s:.0f} s waited this month{last_holds}"
        if holds else "no hold this month")
    p = st.plan
    start = window_start(st.month, st.window_days)
    if st.month < m.current_month(today):
        window = f"over (the last {st.window_days} days, from {start})"
    elif p.days_left == 0:
        window = f"starts {start} (the last {st.window_days} days of the month)"
    else:
        window = f"day {st.window_days - p.days_left + 1} of {st.window_days} ({p.days_left} left, today included)"
    add("window", window)
    if p.calls_per_hour > 0:
        add("plan", f"{p.accounts_per_day:,} accounts/day ({p.calls_per_run:,} calls "
            f"at {p.pace_calls_per_hour:.0f}/h of a {p.calls_per_hour:.0f}/h budget, "
            f"{p.run_hours:.0f} h, {p.calls_per_account:.2f} calls/account)")
    else:
        add("plan", "no pacing (OBSERVATOIRE_GRAPH_CALLS_PER_HOUR=0)")
    if st.remaining == 0:
        verdict = "[green]every account is collected[/]"
    elif st.month < m.current_month(today):
        verdict = f"[red]{st.remaining:,} accounts were not collected[/]"
    elif p.feasible:
        verdict = f"[green]on track[/]: {p.days_needed} more run(s) needed"
    else:
        verdict = (f"[red]short[/]: the window can still collect {p.window_capacity:,} of "
                   f"{st.remaining:,} accounts (widen OBSERVATOIRE_COLLECTION_WINDOW_DAYS)")
    add("outlook", verdict)
    return rows
