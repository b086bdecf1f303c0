"""The month's Graph API collection, one day at a time: plan, collect, keep a run log.

`collect_today` is what the `graph_api` source of the collection asset runs (the daily
schedule and `observatoire run --source graph_api` alike): it counts the accounts not
collected yet this month, plans today's share (`plan.plan_day`), collects with
the run's budgets, and appends one line per run start, throttling hold and end to the
month's run log, `<data_dir>/collection/<YYYY-MM>.jsonl` (outside the landing folder: landing files are the
archive, the log is operational). A run that fails for more than half of its accounts is
alerted that night (`collection_failing`, collect/night.py). `month_status` reads the
registry, the month's landing files and the run log: what `observatoire status` and the
asset's metadata show.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from dagster_project.archive.landing import month_dir
from dagster_project.collect.plan import (
    DayPlan,
    PlanSettings,
    load_plan_settings,
    measured_calls_per_account,
    plan_day,
    window_days_left,
)
from dagster_project.months import add_months, current_month, month_key
from dagster_project.registry.accounts import Account, is_valid_handle
from dagster_project.settings import Settings

log = logging.getLogger(__name__)

STATUSES = ("ok", "not_found", "not_business", "error")
MONTH_END_MARGIN_S = 600.0  # the last run of the month ends 10 min before midnight UTC


class CollectionBusy(RuntimeError):
    """Another collection run of the month is in progress."""


@contextlib.contextmanager
def exclusive_run(data_dir: Path, month: dt.date):
    """One collection run of a month at a time (two would fetch the same accounts): an
    exclusive lock on `<data_dir>/collection/<YYYY-MM>.lock`, released when the run ends or
    its process dies."""
    path = run_log_path(data_dir, month).with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CollectionBusy(
                f"another Graph API collection run of {month_key(month)} is in progress "
                f"(lock {path}): let it finish, then run again — accounts it collects are "
                "skipped") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_log_path(data_dir: Path, month: dt.date) -> Path:
    return Path(data_dir) / "collection" / f"{month_key(month)}.jsonl"


def append_run_log(data_dir: Path, month: dt.date, record: dict) -> Path:
    """Append one JSON line (flushed and fsync'ed: a crash leaves at most a torn last line)."""
    path = run_log_path(data_dir, month)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return path


def read_run_log(data_dir: Path, month: dt.date) -> list[dict]:
    """The month's run log lines, oldest first (a torn or malformed line is skipped)."""
    path = run_log_path(data_dir, month)
    if not path.is_file():
        return []
    out = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


@dataclass(frozen=True)
class Run:
    """One collection run of the month, from its `started` and end lines."""
    run_id: str
    started_at: str
    ended_at: str | None = None
    outcome: str = "running or interrupted"   # done | stopped | failed | running or interrupted
    stopped_reason: str | None = None
    requests: int = 0
    collected: int = 0
    counts: dict = field(default_factory=dict)
    message: str = ""
    pauses: int = 0          # throttling holds (one `paused` line each)
    paused_s: float = 0.0    # their total wait


def runs_of(lines: list[dict]) -> list[Run]:
    runs: dict[str, Run] = {}
    for line in lines:
        rid = str(line.get("run_id", ""))
        if line.get("event") == "started":
            runs[rid] = Run(rid, str(line.get("at", "")))
        elif line.get("event") == "paused" and rid in runs:
            run = runs[rid]
            runs[rid] = replace(run, pauses=run.pauses + 1,
                                paused_s=run.paused_s + float(line.get("waited_s") or 0))
        elif line.get("event") in ("finished", "failed") and rid in runs:
            counts = {k: int(line.get(k) or 0) for k in STATUSES}
            reason = line.get("stopped_reason")
            outcome = ("failed" if line["event"] == "failed"
                       else "stopped" if reason else "done")
            runs[rid] = replace(runs[rid], ended_at=str(line.get("at", "")), outcome=outcome,
                                stopped_reason=reason, requests=int(line.get("requests") or 0),
                                collected=sum(counts.values()), counts=counts,
                                message=str(line.get("message") or ""))
    return list(runs.values())


@dataclass(frozen=True)
class MonthStatus:
    month: dt.date
    total: int                       # valid, distinct handles of the registry
    by_status: dict[str, int]        # ok / not_found / not_business / error / not_collected
    requests: int                    # calls made by this month's runs
    runs: list[Run]
    plan: DayPlan
    window_days: int
    invalid_handles: int

    @property
    def collected(self) -> int:
        return self.by_status["ok"] + self.by_status["not_found"] + self.by_status["not_business"]

    @property
    def remaining(self) -> int:
        return self.total - self.collected

    @property
    def last_run(self) -> Run | None:
        return self.runs[-1] if self.runs else None

    @property
    def pauses(self) -> tuple[int, float]:
        """Throttling holds of the month's runs: (count, total seconds)."""
        return (sum(r.pauses for r in self.runs),
                round(sum(r.paused_s for r in self.runs), 1))

    def as_metadata(self) -> dict:
        last = self.last_run
        return {
            "month_accounts_total": self.total,
            "month_accounts_collected": self.collected,
            "month_accounts_remaining": self.remaining,
            **{f"month_{k}": v for k, v in self.by_status.items()},
            "month_requests": self.requests,
            "month_runs": len(self.runs),
            "month_throttle_holds": self.pauses[0],
            "month_throttle_hold_s": self.pauses[1],
            "window_days": self.window_days,
            "last_run": (f"{last.started_at} → {last.ended_at or '…'} {last.outcome}"
                         + (f" ({last.stopped_reason})" if last.stopped_reason else "")
                         if last else "none"),
        }


def _handles(accounts: list[Account]) -> tuple[list[str], int]:
    valid, invalid, seen = [], 0, set()
    for acc in accounts:
        if not is_valid_handle(acc.handle):
            invalid += 1
        elif acc.handle not in seen:
            seen.add(acc.handle)
            valid.append(acc.handle)
    return valid, invalid


def month_status(accounts: list[Account], settings: Settings, month: dt.date, *,
                 today: dt.date | None = None, plan_settings: PlanSettings | None = None,
                 run_hours: float | None = None) -> MonthStatus:
    """Where the month's collection stands (and today's plan for what is left)."""
    from dagster_project.collect.graph_api import read_month_statuses

    ps = plan_settings or load_plan_settings()
    month = month.replace(day=1)
    today = today or dt.datetime.now(dt.UTC).date()
    handles, invalid = _handles(accounts)
    statuses = read_month_statuses(month_dir(settings.landing_dir, month), month)
    by_status = dict.fromkeys((*STATUSES, "not_collected"), 0)
    for h in handles:
        status = statuses.get(h, ("not_collected", None))[0]
        by_status[status if status in by_status else "error"] += 1
    runs = runs_of(read_run_log(settings.data_dir, month))
    requests = sum(r.requests for r in runs)
    cpa = measured_calls_per_account(requests, sum(r.collected for r in runs))
    if current_month(today) == month:
        days_left = window_days_left(today, ps.window_days)
    else:
        days_left = 0 if month < current_month(today) else ps.window_days
    remaining = len(handles) - sum(by_status[k] for k in ("ok", "not_found", "not_business"))
    plan = plan_day(remaining, days_left, calls_per_hour=ps.calls_per_hour,
                    run_hours=run_hours if run_hours is not None else ps.run_hours,
                    calls_per_account=cpa, usage_target=ps.usage_target)
    return MonthStatus(month, len(handles), by_status, requests, runs, plan, ps.window_days,
                       invalid)


@dataclass(frozen=True)
class DayOutcome:
    result: object          # graph_api.CollectionResult
    plan: DayPlan
    status: MonthStatus     # after the run

    def as_metadata(self) -> dict:
        return {**self.result.as_metadata(), **self.plan.as_metadata(),
                **self.status.as_metadata()}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def collect_today(accounts: list[Account], settings: Settings, *,
                  plan_settings: PlanSettings | None = None,
                  options=None, now: Callable[[], dt.datetime] | None = None,
                  max_in_flight: int = 8, progress: Callable[[dict], None] | None = None,
                  ) -> DayOutcome:
    """Today's run of the month's collection: plan, collect within the plan, log the run.

    `options` (CollectorOptions) gives the transport knobs; the plan sets the pacing, the
    stop on usage and the run's budgets. Raises like `graph_api.collect_month` (the run log
    then gets a `failed` line), and CollectionBusy while another run of the month is on.
    """
    ps = plan_settings or load_plan_settings()
    now = now or _utcnow
    month = current_month(now().astimezone(dt.UTC).date())
    with exclusive_run(settings.data_dir, month):
        return _collect_today(accounts, settings, ps, options, now, max_in_flight, progress)


def _collect_today(accounts, settings, ps, options, now, max_in_flight, progress) -> DayOutcome:
    from dagster_project.collect.graph_api import CollectorOptions, collect_month
    from dagster_project.collect.night import alert_failing_night

    started = now().astimezone(dt.UTC)
    month = current_month(started.date())
    # the last run of the month must end before midnight UTC (its lines belong to this month)
    month_end = dt.datetime.combine(add_months(month, 1), dt.time(), tzinfo=dt.UTC)
    run_s = max(60.0, min(ps.run_hours * 3600.0,
                          (month_end - started).total_seconds() - MONTH_END_MARGIN_S))
    before = month_status(accounts, settings, month, today=started.date(), plan_settings=ps,
                          run_hours=run_s / 3600.0)
    plan = before.plan
    base = options or CollectorOptions()
    opts = replace(base, calls_per_hour=plan.pace_calls_per_hour,
                   hold_usage_pct=ps.stop_usage_pct,
                   max_calls=plan.calls_per_run or None, max_run_s=run_s,
                   max_accounts=plan.quota)
    run_id = uuid.uuid4().hex[:12]
    append_run_log(settings.data_dir, month, {
        "event": "started", "run_id": run_id, "at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "remaining": plan.remaining, "quota": plan.quota, "days_left": plan.days_left,
        "calls_per_run": plan.calls_per_run, "pace_calls_per_hour": plan.pace_calls_per_hour})
    log.info("collection %s, run %s: %d of %d accounts left, %d window day(s) left, quota %d, "
             "%d calls at %.0f/h", month_key(month), run_id, plan.remaining, before.total,
             plan.days_left, plan.quota, plan.calls_per_run, plan.pace_calls_per_hour)

    def paused(record: dict) -> None:  # each throttling hold, as it ends
        append_run_log(settings.data_dir, month, {"event": "paused", "run_id": run_id,
                                                  **record})

    try:
        result = collect_month(accounts, month, settings, max_in_flight=max_in_flight,
                               progress=progress, now=now, options=opts, on_pause=paused)
    except BaseException as exc:
        append_run_log(settings.data_dir, month, {
            "event": "failed", "run_id": run_id, "at": _stamp(now()),
            "message": f"{type(exc).__name__}: {str(exc)[:300]}"})
        raise
    append_run_log(settings.data_dir, month, {
        "event": "finished", "run_id": run_id, "at": _stamp(now()),
        **{k: getattr(result, k) for k in STATUSES},
        "requests": result.requests, "stopped_reason": result.stopped_reason,
        "dropped": result.dropped, "remaining": result.remaining, "left": result.left[:100],
        "usage_max_pct": result.usage_max_pct, "pauses": len(result.pauses),
        "paused_s": result.paused_s, "files": [p.name for p in result.files]})
    after = month_status(accounts, settings, month, today=started.date(), plan_settings=ps)
    # more than half of the run's accounts failed: alerted tonight, once a night (night.py)
    alert_failing_night(settings.data_dir, result, started, collection_run=run_id)
    return DayOutcome(result, plan, after)


def _stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
