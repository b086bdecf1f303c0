"""The budget governor: Meta's usage headers and rate-limit answers, shared by every worker.

Usage headers `X-App-Usage` / `X-Business-Use-Case-Usage` are read on every response: the
highest percentage seen drives a shared governor — above `usage_slowdown_pct` (80 %) request
starts are spaced proportionally across all workers.

`calls_per_hour` (the daily collection window) paces request starts: one every
3600/rate seconds across all workers.

What happens when Meta says "enough" (usage at the mark, a time to regain access, or a
rate-limit code 4 / 17 / 32 / 613 / 800xx / HTTP 429) depends on `hold_usage_pct`:

- unset (`accounts check`): at ≥ 100 % every worker pauses for the regain estimate, or for
  a doubling backoff; rate-limit answers are retried after a backoff (client.py);
- set (the daily collection): the governor **holds**. No worker sends any more; after a
  bounded back-off (`hold_initial_s` doubling to `hold_max_s`, or the regain estimate /
  Retry-After when Meta gives one) a single request goes out as a probe; if its answer is
  not throttled and usage is back under the slow-down mark (`usage_slowdown_pct`), every
  worker resumes at the planned pace, otherwise the next wait is doubled. A hold whose next probe, or Meta's regain estimate, falls after the end of
  the run's time budget (`max_run_s`) stops the run instead (reason `usage`): it stops for
  the day only when the run's end comes first.
  Meta documents no wait time for these limits: "stop making API calls" and watch the
  header, which is what the probe does, one call at a time. Every hold is kept in
  `pauses` (and passed to `on_pause` when it ends) for the run log.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dagster_project.collect.graph_api.options import CollectorOptions

log = logging.getLogger(__name__)


def parse_usage(headers: Any) -> tuple[float | None, float]:
    """(highest usage percentage, estimated minutes to regain access) from response headers."""
    pct: float | None = None
    regain = 0.0

    def bump(value: Any) -> None:
        nonlocal pct
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            pct = float(value) if pct is None else max(pct, float(value))

    raw = headers.get("X-App-Usage")
    if raw:
        try:
            app = json.loads(raw)
        except ValueError:
            app = None
        if isinstance(app, dict):
            for key in ("call_count", "total_cputime", "total_time"):
                bump(app.get(key))
    raw = headers.get("X-Business-Use-Case-Usage")
    if raw:
        try:
            buc = json.loads(raw)
        except ValueError:
            buc = None
        if isinstance(buc, dict):
            for entries in buc.values():
                for entry in entries if isinstance(entries, list) else [entries]:
                    if not isinstance(entry, dict):
                        continue
                    for key in ("call_count", "total_cputime", "total_time"):
                        bump(entry.get(key))
                    eta = entry.get("estimated_time_to_regain_access")
                    if isinstance(eta, (int, float)) and not isinstance(eta, bool):
                        regain = max(regain, float(eta))
    return pct, regain


def _utc_stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Hold:
    """One hold: from the answer that started it to the probe that ended it."""
    reason: str
    usage_pct: float | None
    started_at: str                 # UTC, for the run log
    started: float                  # monotonic
    until: float = 0.0              # monotonic end of the current wait
    steps: int = 0                  # waits so far (each doubles the next)
    probes: int = 0
    elapsed: bool = False           # the current wait is over: a probe may go
    sleeper: bool = False           # a worker is sleeping out the current wait
    probe_out: bool = False         # the probe is under way

    def as_record(self, outcome: str) -> dict:
        return {"at": self.started_at, "reason": self.reason,
                "usage_pct": self.usage_pct, "probes": self.probes,
                "waited_s": round(time.monotonic() - self.started, 3), "outcome": outcome}


class Governor:
    """Shared pacing of request starts across workers, driven by usage headers and
    rate-limit answers (see the module docstring for the two modes)."""

    def __init__(self, opts: CollectorOptions, sleep: Callable[[float], None], *,
                 stop: Callable[[str], None] | None = None,
                 on_pause: Callable[[dict], None] | None = None):
        self._opts = opts
        self._sleep = sleep
        self._stop = stop or (lambda _reason: None)
        self._on_pause = on_pause
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._pause_until = 0.0
        self._usage_pause_until = 0.0
        self._next_slot = 0.0
        self._usage = 0.0
        self._saturated = 0
        self._hold: _Hold | None = None
        self._deadline = (time.monotonic() + opts.max_run_s * opts.backoff_scale
                          if opts.max_run_s is not None else None)
        self.max_usage = 0.0
        self.usage_pauses = 0
        self.slowdowns = 0
        self.paced = 0
        self.pauses: list[dict] = []     # ended holds (run log records)
        self._pace_s = 3600.0 / opts.calls_per_hour if opts.calls_per_hour > 0 else 0.0

    @property
    def holds(self) -> bool:
        """True in hold mode (the daily collection): rate limits hold, they are not retried."""
        return self._opts.hold_usage_pct is not None

    def _interval(self) -> float:
        lo = self._opts.usage_slowdown_pct
        if self._usage <= lo or self._usage >= 100:
            return 0.0
        return self._opts.usage_slowdown_max_s * (self._usage - lo) / (100.0 - lo)

    def wait_turn(self) -> bool:
        """Wait until this worker may send; True when its request is a hold's probe."""
        while True:
            sleep_s = None
            with self._cond:
                hold = self._hold
                if hold is None:
                    break
                if hold.elapsed and not hold.probe_out:
                    hold.probe_out = True
                    hold.probes += 1
                    return True
                if hold.elapsed or hold.sleeper:
                    self._cond.wait(timeout=0.5)  # the probe's answer, or the sleeper's end
                else:  # this worker sleeps out the wait; the others wait for it
                    hold.sleeper = True
                    sleep_s = max(0.0, hold.until - time.monotonic())
            if sleep_s is None:
                self._sleep(0.0)  # Cancelled if the run stopped meanwhile
                continue
            try:
                self._sleep(sleep_s)  # raises Cancelled when the run stops
            finally:
                with self._cond:
                    hold.sleeper = False
                    if self._hold is hold:
                        hold.elapsed = True
                        self._cond.notify_all()
        self._paced_wait()
        return False

    def _paced_wait(self) -> None:
        scale = self._opts.backoff_scale
        with self._lock:
            now = time.monotonic()
            start = max(now, self._pause_until)
            usage_interval = self._interval()
            interval = max(usage_interval, self._pace_s) * scale
            paced = False
            if interval > 0:
                if self._next_slot > start:
                    start, paced = self._next_slot, True
                self._next_slot = start + interval
            if paced:
                if usage_interval > self._pace_s:
                    self.slowdowns += 1
                else:
                    self.paced += 1
        delay = start - now
        if delay > 0:
            self._sleep(delay)

    def pause(self, planned_s: float) -> None:
        with self._lock:
            until = time.monotonic() + planned_s * self._opts.backoff_scale
            self._pause_until = max(self._pause_until, until)

    def probe_failed(self) -> None:
        """The probe got no answer (network error): the next worker probes."""
        with self._cond:
            if self._hold is not None and self._hold.probe_out:
                self._hold.probe_out = False
                self._cond.notify_all()

    def observe(self, headers: Any, *, probe: bool = False, throttled: str | None = None,
                retry_after: float | None = None) -> None:
        """Read an answer's usage headers; `throttled` names a rate-limit answer
        ("code 4", "HTTP 429"), None for any other answer."""
        pct, regain_min = parse_usage(headers)
        if pct is not None:
            with self._lock:
                self._usage = pct
                self.max_usage = max(self.max_usage, pct)
        if self.holds:
            self._observe_hold(pct, regain_min, probe, throttled, retry_after)
        elif pct is not None or regain_min > 0:
            self._observe_pause(pct, regain_min)

    # -- hold mode
    def _observe_hold(self, pct, regain_min, probe, throttled, retry_after) -> None:
        mark = self._opts.hold_usage_pct
        hot = throttled or regain_min > 0 or (pct is not None and pct >= mark)
        # a probe lifts the hold only once usage is back under the slow-down mark
        clear = not throttled and regain_min <= 0 and (
            pct is None or pct < min(mark, self._opts.usage_slowdown_pct))
        reason = (f"rate limited, {throttled} (usage {pct:.0f} %)" if throttled and pct is not None
                  else f"rate limited, {throttled}" if throttled
                  else f"usage {pct:.0f} %" if pct is not None else "time to regain access")
        ended = None
        with self._cond:
            hold = self._hold
            if hold is None:
                if not hot:
                    return
                hold = self._hold = _Hold(reason, pct, _utc_stamp(), time.monotonic())
                log.warning("Graph API %s: holding every request, then one probe at a time",
                            reason)
            elif not probe:
                return  # answers to requests sent before the hold do not stack
            elif clear:
                ended, self._hold = hold, None
                self._cond.notify_all()
            if ended is None and not self._next_wait(hold, regain_min, retry_after):
                ended, self._hold = hold, None
                self._cond.notify_all()
        if ended is not None:
            self._end_hold(ended, "resumed" if clear else "run ended")

    def _next_wait(self, hold: _Hold, regain_min: float, retry_after: float | None) -> bool:
        """Plan the hold's next wait (lock held); False when it would outlast the run."""
        opts = self._opts
        given = regain_min * 60.0 if regain_min > 0 else retry_after  # Meta's own estimate
        if given is not None:
            planned = min(given, opts.hold_max_s)
        else:
            planned = min(opts.hold_initial_s * 2 ** min(hold.steps, 16), opts.hold_max_s)
        now = time.monotonic()
        # stop for the day when the next probe, or access as Meta estimates it, comes
        # after the run's end
        longest = max(planned, given or 0.0) * opts.backoff_scale
        if self._deadline is not None and now + longest >= self._deadline:
            self._stop("usage")
            return False
        wait = planned * opts.backoff_scale
        hold.steps += 1
        hold.until = now + wait
        hold.elapsed = hold.probe_out = False
        self.usage_pauses += 1 if hold.steps == 1 else 0
        log.info("Graph API hold: probe in %.0f s (wait %d)", planned, hold.steps)
        return True

    def _end_hold(self, hold: _Hold, outcome: str) -> None:
        record = hold.as_record(outcome)
        with self._lock:
            self.pauses.append(record)
        log.warning("Graph API hold ended (%s) after %.1f s and %d probe(s)", outcome,
                    record["waited_s"], hold.probes)
        if self._on_pause is not None:
            self._on_pause(record)

    def close(self) -> None:
        """The run is over: a hold still on is recorded as ended by the run's end."""
        with self._cond:
            hold, self._hold = self._hold, None
            self._cond.notify_all()
        if hold is not None:
            self._end_hold(hold, "run ended")

    # -- pause mode
    def _observe_pause(self, pct, regain_min) -> None:
        opts = self._opts
        with self._lock:
            saturated = (pct is not None and pct >= 100) or regain_min > 0
            if not saturated:
                self._saturated = 0
                return
            if regain_min > 0:
                planned = min(regain_min * 60.0, opts.usage_pause_max_s)
            else:
                planned = min(opts.usage_pause_s * 2 ** min(self._saturated, 16),
                              opts.usage_pause_max_s)
            now = time.monotonic()
            if self._usage_pause_until > now:  # already in a usage pause: answers to
                return                          # requests sent before it don't stack
            self._saturated += 1
            self._usage_pause_until = now + planned * opts.backoff_scale
            self._pause_until = max(self._pause_until, self._usage_pause_until)
            self.usage_pauses += 1
        log.warning("Graph API usage at %.0f%%: pausing all requests for %.0f s",
                    pct if pct is not None else 100.0, planned)
