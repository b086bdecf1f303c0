"""The parts of `observatoire status` beyond the month's collection: the archive and its
nightly check, the warehouse, the published copy. Each part is (label, value) rows; the
`*_rows` functions are pure, the `read_*` ones read (cheaply, never writing), and `guarded`
turns a part that raises into one row naming its error, so that the other parts still show.

A `Part` says whether something is missing or unreadable (`problem`): `status` exits 1 then.
A data folder not built yet (no warehouse, no published copy, no landed month, serve never
started) is a state, not a problem: a fresh install shows it and exits 0.
"""
from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rich.markup import escape

NIGHTLY_JOB = "nightly_archive"
BACKUP_ENV = "OBSERVATOIRE_BACKUP_DIR"


@dataclass
class Part:
    rows: list[tuple[str, str]] = field(default_factory=list)
    problem: str | None = None   # set: the part is missing or unreadable (status exits 1)


def guarded(label: str, build: Callable[[], Part], secrets: Iterable[str | None] = ()) -> Part:
    """`build()`, or a row naming its error (secrets scrubbed) if it raises."""
    try:
        return build()
    except Exception as exc:  # noqa: BLE001 - one part failing must not hide the others
        from dagster_project.service.alerts import scrub

        first = (str(exc).strip().splitlines() or [""])[0][:300]
        why = scrub(f"{type(exc).__name__}: {first}", [s for s in secrets if s])
        return Part([(label, f"[red]could not be read[/]: {escape(why)}")],
                    problem=f"{label.strip()} unreadable")


def _when(epoch: float) -> str:
    return f"{dt.datetime.fromtimestamp(epoch, dt.UTC):%Y-%m-%d %H:%M} UTC"


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


# --- the registry --------------------------------------------------------------------------

def registry_missing(registry: Path) -> Part:
    why = (f"[red]missing[/] ({escape(str(registry))}) — add accounts with "
           "`observatoire accounts add` or set OBSERVATOIRE_ACCOUNTS")
    return Part([("registry", why)], problem="registry missing")


# --- the archive ---------------------------------------------------------------------------

def archive_rows(landing_dir: Path, months: list[str]) -> list[tuple[str, str]]:
    where = escape(str(landing_dir))
    if not months:
        return [("archive", f"no landed month yet ({where})")]
    span = months[0] if len(months) == 1 else f"{months[0]} → {months[-1]}"
    return [("archive", f"{len(months)} month(s), {span} ({where})")]


@dataclass(frozen=True)
class LastRun:
    run_id: str
    status: str              # DagsterRunStatus value: SUCCESS, FAILURE, STARTED…
    started: float           # epoch seconds (its creation when it never started)
    ended: float | None


def read_last_run(dagster_home: Path, job_name: str = NIGHTLY_JOB) -> LastRun | None:
    """The job's latest run in this DAGSTER_HOME; None when there is none (or no instance)."""
    if not (Path(dagster_home) / "dagster.yaml").exists():
        return None
    from dagster import DagsterInstance, RunsFilter

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        records = instance.get_run_records(RunsFilter(job_name=job_name), limit=1)
    if not records:
        return None
    rec = records[0]
    return LastRun(rec.dagster_run.run_id, rec.dagster_run.status.value,
                   rec.start_time or rec.create_timestamp.timestamp(), rec.end_time)


def read_verify_alert(data_dir: Path, since: float) -> str | None:
    """The text of the nightly check's `verify_failed` alert recorded since `since`, if any
    (the outbox is only read when it exists)."""
    from dagster_project.service import alerts

    if not alerts.outbox_path(data_dir).exists():
        return None
    after = dt.datetime.fromtimestamp(since, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    found = [a for a in alerts.recent(data_dir, limit=50)
             if a["event"] == "verify_failed" and a["created_at"] >= after]
    return found[0]["text"] if found else None


def nightly_rows(last: LastRun | None, verify_alert: str | None,
                 backup_dir: str | None) -> list[tuple[str, str]]:
    """The nightly archive check (verify, then backup): its last run, where it backs up."""
    if last is None:
        rows = [("  nightly check", ("never run on this DAGSTER_HOME (serve runs it every "
                                     "night at 04:30, Paris)"))]
    else:
        when = _when(last.started)
        if last.status == "SUCCESS":
            state = "[green]success[/]"
        elif last.status in ("FAILURE", "CANCELED"):
            state = (f"[red]{last.status.lower()}[/] (run {last.run_id}: its event log is in "
                     "`observatoire ui`)")
        else:
            state = f"{last.status.lower()} (run {last.run_id})"
        verify = (f"; [red]verify found problems[/]: {escape(verify_alert)}" if verify_alert
                  else "; verify found no problem" if last.status == "SUCCESS" else "")
        rows = [("  nightly check", f"last run {when}: {state}{verify}")]
    rows.append(("  backup", f"to {escape(backup_dir)} ({BACKUP_ENV})" if backup_dir else
                 f"not configured ({BACKUP_ENV}): the nightly check only verifies"))
    return rows


def nightly_part(dagster_home: Path, data_dir: Path) -> Part:
    last = read_last_run(dagster_home)
    alert = read_verify_alert(data_dir, last.started) if last is not None else None
    return Part(nightly_rows(last, alert, os.environ.get(BACKUP_ENV) or None))


# --- the warehouse and the published copy ----------------------------------------------------

def warehouse_part(path: Path) -> Part:
    """Present or not (size, last written): never opened, a run may be writing it."""
    path = Path(path)
    if not path.is_file():
        why = f"not built yet ({escape(str(path))}): `observatoire run` builds it"
        return Part([("warehouse", why)])
    st = path.stat()
    return Part([("warehouse", (f"{escape(str(path))} ({_size(st.st_size)}, "
                                f"written {_when(st.st_mtime)})"))])


@dataclass(frozen=True)
class Published:
    months: int
    newest: dt.date | None
    provisional: bool
    written: float           # epoch seconds: the copy in force was last written


def read_published(path: Path) -> Published:
    """What the analysts' copy ranks (opened read-only; raises when unreadable)."""
    from dagster_project.warehouse import connect

    with connect(path, read_only=True) as con:
        months, newest = con.execute("select count(distinct month), max(month) "
                                     "from marts.fct_monthly_rankings").fetchone()
        provisional = newest is not None and bool(con.execute(
            "select bool_or(is_provisional) from marts.fct_monthly_rankings where month = ?",
            [newest]).fetchone()[0])
    return Published(months, newest, provisional, Path(path).resolve().stat().st_mtime)


def published_rows(path: Path, pub: Published | None) -> list[tuple[str, str]]:
    where = escape(str(path))
    if pub is None:
        return [("published copy", f"missing ({where}): a run's publish step writes it")]
    if pub.newest is None:
        return [("published copy", f"{where}: no ranked month yet")]
    newest = f"{pub.newest:%Y-%m}" + (" (provisional)" if pub.provisional else "")
    return [("published copy", (f"{where}: newest month [bold]{newest}[/], {pub.months} "
                                f"month(s) ranked, written {_when(pub.written)}"))]


def published_part(path: Path) -> Part:
    path = Path(path)
    return Part(published_rows(path, read_published(path) if path.is_file() else None))


# --- serve: its daemon and the schedules' next ticks --------------------------------------

HEARTBEAT_FRESH_S = 120.0   # the daemon writes a heartbeat every 30 s or so


def daemon_state(heartbeats: dict[str, float], now: float) -> str:
    """'alive …' / 'not running …' from the daemons' last heartbeats (epoch seconds; pure)."""
    if not heartbeats:
        return "never started on this DAGSTER_HOME (start it with `observatoire serve`)"
    last = max(heartbeats.values())
    age = now - last
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(last))
    if age <= HEARTBEAT_FRESH_S:
        return f"daemon alive (last heartbeat {age:.0f} s ago, {len(heartbeats)} daemons)"
    return f"not running: last daemon heartbeat {stamp}"


def heartbeats(dagster_home) -> dict[str, float]:
    """The daemons' last heartbeats on `dagster_home` (epoch seconds; {} without an instance)."""
    from dagster import DagsterInstance

    if not (Path(dagster_home) / "dagster.yaml").exists():
        return {}
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        return {str(k): hb.timestamp for k, hb in instance.get_daemon_heartbeats().items()}


def next_ticks(schedules, after: float, keep=None) -> list[tuple[str, str]]:
    """(schedule name, next tick 'YYYY-MM-DD HH:MM (zone)') for each schedule; `keep(name,
    local datetime)` leaves out ticks whose evaluation skips (at most 62 looked at)."""
    import datetime as dt
    from itertools import islice
    from zoneinfo import ZoneInfo

    from dagster._utils.schedules import cron_string_iterator  # Dagster's own cron reader

    out = []
    for sch in schedules:
        zone = sch.execution_timezone or "UTC"
        for tick in islice(cron_string_iterator(after, sch.cron_schedule, zone), 62):
            local = dt.datetime.fromtimestamp(tick.timestamp(), ZoneInfo(zone))
            if keep is None or keep(sch.name, local):
                out.append((sch.name, local.strftime("%Y-%m-%d %H:%M") + f" ({zone})"))
                break
    return out


def status_rows(dagster_home, now: float | None = None) -> list[tuple[str, str]]:
    """The rows `observatoire status` adds about serve: is its daemon alive, the next ticks
    of the schedules (which run only while serve runs)."""
    from dagster_project.collect.plan import load_plan_settings, window_days_left
    from dagster_project.defs.schedules import schedules

    now = time.time() if now is None else now
    rows = [("serve", daemon_state(heartbeats(dagster_home), now))]
    window = load_plan_settings().window_days

    def keep(name: str, local) -> bool:  # the collection skips the days before its window
        return name != "graph_api_collection" or window_days_left(local.date(), window) > 0

    rows += [(f"  next {name}", when) for name, when in next_ticks(schedules, now, keep)]
    return rows
