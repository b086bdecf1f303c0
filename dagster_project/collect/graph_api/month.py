"""The collection of a month: concurrency, the run's budgets, progress, the result.

One call per account (plus one per extra page of media while posts are still inside the
30-day window), `max_in_flight` accounts at a time, one landing line per account, files
written atomically every `batch_size` finished accounts.

The daily collection window (`collect/plan.py`, `collect/window.py`) uses five more knobs, all off
by default: `calls_per_hour` paces request starts (one every 3600/rate seconds across all
workers); `hold_usage_pct` turns "pause" into "hold": once the usage headers reach it (or
say 100 %, or give a time to regain access, or Meta answers a rate-limit code) no request is
sent until a single probe finds the way clear again (governor.py); a hold that would outlast
the run's time budget stops the run instead — accounts finished are written, accounts in
flight are dropped (never written, so never written twice) and the next run fetches them;
`max_calls`, `max_run_s` and `max_accounts` are the run's budgets: once one is reached no
new account starts and the accounts in flight finish.
`CollectionResult.stopped_reason` says which limit ended the run (None: every account done;
`usage`: still throttled when the run's time ran out).
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from dagster_project.archive.landing import month_dir
from dagster_project.collect.graph_api.client import GraphClient, check_credentials, utc, utcnow
from dagster_project.collect.graph_api.options import CollectorOptions
from dagster_project.collect.graph_api.resume import read_collected_handles
from dagster_project.collect.graph_api.writer import BatchWriter
from dagster_project.months import month_key, require_current_month
from dagster_project.registry.accounts import Account, is_valid_handle
from dagster_project.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class CollectionResult:
    month: dt.date
    ok: int
    not_found: int
    not_business: int
    error: int
    skipped: int
    requests: int
    throttled: int
    files: list[Path]
    invalid_handles: list[str]
    elapsed_s: float
    # breakdown (not part of the minimal contract, handy in Dagster metadata)
    throttle_errors: int = 0
    usage_pauses: int = 0
    usage_slowdowns: int = 0
    transient_retries: int = 0
    usage_max_pct: float = 0.0
    # why the run ended before every account was done: usage | call_budget | time_budget |
    # quota; None when every account of the run was collected
    stopped_reason: str | None = None
    dropped: int = 0      # accounts in flight at a stop: not written, fetched next run
    remaining: int = 0    # accounts left for the next run (dropped included)
    left: list = field(default_factory=list)    # their handles, in registry order
    pauses: list = field(default_factory=list)  # the run's holds (governor records)
    # the accounts in status error, by error (`error_label`), in the order first seen
    errors: Counter = field(default_factory=Counter)

    @property
    def paused_s(self) -> float:
        return round(sum(p["waited_s"] for p in self.pauses), 3)

    @property
    def collected(self) -> int:
        return self.ok + self.not_found + self.not_business + self.error

    def as_metadata(self) -> dict:
        names = ", ".join(p.name for p in self.files)
        invalid = ", ".join(self.invalid_handles)
        return {
            "month": month_key(self.month),
            "accounts_collected": self.collected,
            "ok": self.ok,
            "not_found": self.not_found,
            "not_business": self.not_business,
            "error": self.error,
            "skipped_already_collected": self.skipped,
            "invalid_handles": len(self.invalid_handles),
            "invalid_handle_list": invalid[:2000],
            "requests": self.requests,
            "throttled": self.throttled,
            "throttle_errors": self.throttle_errors,
            "usage_pauses": self.usage_pauses,
            "usage_slowdowns": self.usage_slowdowns,
            "transient_retries": self.transient_retries,
            "usage_max_pct": round(float(self.usage_max_pct), 1),
            "files": len(self.files),
            "file_names": names[:2000],
            "elapsed_s": round(float(self.elapsed_s), 3),
            "accounts_per_s": round(self.collected / self.elapsed_s, 2) if self.elapsed_s > 0 else 0.0,
            "stopped_reason": self.stopped_reason or "done",
            "dropped_in_flight": self.dropped,
            "remaining_for_next_run": self.remaining,
            "throttle_holds": len(self.pauses),
            "throttle_hold_s": self.paused_s,
        }


class _RunBudget:
    """The run's own limits (max_accounts, max_calls, max_run_s), checked before each account
    starts: once one is reached no account starts any more; accounts in flight finish."""

    def __init__(self, opts: CollectorOptions, client: GraphClient, t0: float):
        self._opts = opts
        self._collector = client
        self._t0 = t0
        self._lock = threading.Lock()
        self._started = 0
        self._in_flight = 0
        self.dropped = 0
        self.reason: str | None = None

    def _limit(self) -> str | None:
        opts = self._opts
        if opts.max_accounts is not None and self._started >= opts.max_accounts:
            return "quota"
        # one call reserved per account in flight: the budget is not overrun by their first page
        if opts.max_calls is not None and (
                self._collector.requests + self._in_flight >= opts.max_calls):
            return "call_budget"
        if (opts.max_run_s is not None
                and time.monotonic() - self._t0 >= opts.max_run_s * opts.backoff_scale):
            return "time_budget"
        return None

    def run(self, handle: str) -> dict | None:
        with self._lock:
            if self._collector.stop_reason is not None:
                return None  # the run is stopping: this account never started
            if self.reason is None:
                self.reason = self._limit()
            if self.reason is not None:
                return None
            self._started += 1
            self._in_flight += 1
        try:
            rec = self._collector.collect_account(handle)
        finally:
            with self._lock:
                self._in_flight -= 1
        if rec is None:
            with self._lock:
                self.dropped += 1
        return rec


def collect_month(accounts: list[Account], month: dt.date, settings: Settings, *,
                  max_in_flight: int = 8, batch_size: int = 50,
                  progress: Callable[[dict], None] | None = None,
                  now: Callable[[], dt.datetime] | None = None,
                  options: CollectorOptions | None = None,
                  on_pause: Callable[[dict], None] | None = None) -> CollectionResult:
    """Collect today's snapshot of every account into the current month's landing folder.

    Raises ValueError for a month other than the current one (the Graph API only returns
    today's figures) and TokenError when the token is missing or rejected (code 190).
    """
    opts = options or CollectorOptions()
    now = now or utcnow
    t0 = time.monotonic()
    started = utc(now())
    month = require_current_month([month], started.date())
    check_credentials(settings)
    if max_in_flight < 1 or batch_size < 1:
        raise ValueError("max_in_flight and batch_size must be ≥ 1")
    handles, invalid = _handles_to_send(accounts)
    already = read_collected_handles(month_dir(settings.landing_dir, month), month)
    todo = [h for h in handles if h not in already]
    skipped = len(handles) - len(todo)
    log.info("Graph API collection %s: %d accounts to fetch, %d already collected, %d invalid",
             month_key(month), len(todo), skipped, len(invalid))

    stop = threading.Event()
    client = GraphClient(settings, opts, max_in_flight, now, stop, on_pause=on_pause)
    run = _Run(client, BatchWriter(settings.landing_dir, started.strftime("%Y%m%dT%H%M%S"),
                                   client.redact, settings.access_token),
               _RunBudget(opts, client, t0), stop, todo, skipped, progress, batch_size)
    run.collect(max_in_flight)
    result = run.result(month, invalid, time.monotonic() - t0)
    _log_result(result)
    return result


def _handles_to_send(accounts: list[Account]) -> tuple[list[str], list[str]]:
    """(valid handles once each, in registry order; invalid handles, never sent)."""
    invalid: list[str] = []
    handles: list[str] = []
    seen: set[str] = set()
    for acc in accounts:
        h = acc.handle
        if not is_valid_handle(h):
            if h not in invalid:
                invalid.append(h)
            continue
        if h not in seen:
            seen.add(h)
            handles.append(h)
    if invalid:
        log.warning("%d invalid handle(s) not sent to the Graph API: %s", len(invalid),
                    ", ".join(repr(h) for h in invalid[:20]))
    return handles, invalid


class _Run:
    """One collection run: `max_in_flight` workers fed from a bounded queue, finished
    accounts buffered and written every `batch_size`, progress reported after each."""

    def __init__(self, client: GraphClient, writer: BatchWriter, budget: _RunBudget,
                 stop: threading.Event, todo: list[str], skipped: int,
                 progress: Callable[[dict], None] | None, batch_size: int):
        self.client, self.writer, self.budget, self.stop = client, writer, budget, stop
        self.todo, self.skipped, self.progress, self.batch_size = todo, skipped, progress, batch_size
        self.counts = {"ok": 0, "not_found": 0, "not_business": 0, "error": 0}
        self.errors: Counter = Counter()
        self.buffer: list[dict] = []
        self.done = 0
        self.finished: set[str] = set()

    def report(self) -> None:
        if self.progress is not None:
            self.progress({"done": self.done, "ok": self.counts["ok"],
                           "failed": self.done - self.counts["ok"],
                           "remaining": len(self.todo) - self.done,
                           "requests": self.client.requests, "skipped": self.skipped,
                           "total": len(self.todo)})

    def collect(self, max_in_flight: int) -> None:
        """Run every account (or until a stop or a budget); TokenError propagates."""
        executor = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="graph-api")
        try:
            self._drive(executor, max_in_flight)
        except BaseException:
            self.stop.set()
            executor.shutdown(wait=True, cancel_futures=True)
            self.client.close()
            if self.buffer:
                log.warning("collection stopped: %d finished account(s) of the current batch "
                            "were not written (they will be fetched again next run)",
                            len(self.buffer))
            raise
        executor.shutdown(wait=True)
        self.client.close()

    def _drive(self, executor: ThreadPoolExecutor, max_in_flight: int) -> None:
        pending: set[Future] = set()
        queue = iter(self.todo)

        def refill() -> None:
            # a bounded queue in front of the workers (cheap cancellation, bounded memory)
            for h in queue:
                pending.add(executor.submit(self.budget.run, h))
                if len(pending) >= max_in_flight * 2:
                    break

        refill()
        self.report()
        while pending:
            finished, still = wait(pending, return_when=FIRST_COMPLETED)
            pending.clear()
            pending.update(still)
            for fut in finished:
                self._finished(fut.result())  # TokenError propagates from here
            if self.stop.is_set() or self.budget.reason is not None:
                continue  # no new account: drain the ones in flight
            refill()
        if self.buffer:
            self.writer.write(self.buffer)
            self.buffer = []

    def _finished(self, rec: dict | None) -> None:
        if rec is None:
            return
        self.done += 1
        self.finished.add(rec["handle"])
        self.counts[rec["status"]] += 1
        if rec["status"] == "error":
            self.errors[error_label(rec.get("error"))] += 1
        self.buffer.append(rec)
        if len(self.buffer) >= self.batch_size:
            self.writer.write(self.buffer)
            self.buffer = []
        self.report()

    def result(self, month: dt.date, invalid: list[str], elapsed_s: float) -> CollectionResult:
        client, gov, counts = self.client, self.client.governor, self.counts
        return CollectionResult(
            month=month, ok=counts["ok"], not_found=counts["not_found"],
            not_business=counts["not_business"], error=counts["error"], skipped=self.skipped,
            requests=client.requests,
            throttled=client.throttle_errors + gov.usage_pauses + gov.slowdowns,
            files=list(self.writer.files), invalid_handles=invalid, elapsed_s=elapsed_s,
            throttle_errors=client.throttle_errors, usage_pauses=gov.usage_pauses,
            usage_slowdowns=gov.slowdowns, transient_retries=client.transient_retries,
            usage_max_pct=gov.max_usage,
            stopped_reason=client.stop_reason or self.budget.reason, dropped=self.budget.dropped,
            remaining=len(self.todo) - self.done, pauses=list(gov.pauses),
            left=[h for h in self.todo if h not in self.finished], errors=Counter(self.errors))


def error_label(error: dict | None) -> str:
    """An account's error as stored on its landing line, in a few words:
    "code 10: (#10) Application does not have permission for this action"."""
    if not isinstance(error, dict):
        return "unknown error"
    message = " ".join(str(error.get("message") or "").split()) or "no message"
    code, subcode = error.get("code"), error.get("subcode")
    if code is None:
        return message
    return f"code {code}" + (f", subcode {subcode}" if subcode is not None else "") + \
        f": {message}"


def name_some(handles: list[str], at_most: int = 20) -> str:
    """The first handles of a list, and how many more."""
    more = len(handles) - at_most
    return ", ".join(handles[:at_most]) + (f" and {more} more" if more > 0 else "")


def _log_result(result: CollectionResult) -> None:
    key = month_key(result.month)
    if result.stopped_reason:
        log.warning("Graph API collection %s stopped (%s): %d accounts left for the next run "
                    "(%d dropped in flight): %s", key, result.stopped_reason,
                    result.remaining, result.dropped, name_some(result.left))
    log.info("Graph API collection %s done: %d ok, %d not_found, %d not_business, %d error, "
             "%d skipped, %d requests, %d throttle waits, %d hold(s) for %.1f s, %.1f s", key,
             result.ok, result.not_found, result.not_business, result.error, result.skipped,
             result.requests, result.throttled, len(result.pauses), result.paused_s,
             result.elapsed_s)
