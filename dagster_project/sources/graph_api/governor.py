"""The budget governor: Meta's usage headers and rate-limit pauses, shared by every worker.

Usage headers `X-App-Usage` / `X-Business-Use-Case-Usage` are read on every response: the
highest percentage seen drives a shared governor — above `usage_slowdown_pct` (80 %) request
starts are spaced proportionally across all workers; at ≥ 100 % (or when
`estimated_time_to_regain_access` > 0) every worker pauses for that many minutes, or for a
doubling backoff when no estimate is given.

`calls_per_hour` (the daily collection window) paces request starts: one every
3600/rate seconds across all workers; with `stop_usage_pct` set, the usage headers stop the
run instead of pausing it (`Governor.observe` returns True).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .options import CollectorOptions

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


class Governor:
    """Shared pacing of request starts across workers, driven by usage headers and 429s."""

    def __init__(self, opts: CollectorOptions, sleep: Callable[[float], None]):
        self._opts = opts
        self._sleep = sleep
        self._lock = threading.Lock()
        self._pause_until = 0.0
        self._usage_pause_until = 0.0
        self._next_slot = 0.0
        self._usage = 0.0
        self._saturated = 0
        self.max_usage = 0.0
        self.usage_pauses = 0
        self.slowdowns = 0
        self.paced = 0
        self._pace_s = 3600.0 / opts.calls_per_hour if opts.calls_per_hour > 0 else 0.0

    def _interval(self) -> float:
        lo = self._opts.usage_slowdown_pct
        if self._usage <= lo or self._usage >= 100:
            return 0.0
        return self._opts.usage_slowdown_max_s * (self._usage - lo) / (100.0 - lo)

    def wait_turn(self) -> None:
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

    def observe(self, headers: Any) -> bool:
        """Read the usage headers; True when the run must stop (`stop_usage_pct` reached)."""
        pct, regain_min = parse_usage(headers)
        if pct is None and regain_min <= 0:
            return False
        opts = self._opts
        with self._lock:
            if pct is not None:
                self._usage = pct
                self.max_usage = max(self.max_usage, pct)
            saturated = (pct is not None and pct >= 100) or regain_min > 0
            if opts.stop_usage_pct is not None and (
                    saturated or (pct is not None and pct >= opts.stop_usage_pct)):
                return True  # the caller stops the run: no pause
            if not saturated:
                self._saturated = 0
                return False
            if regain_min > 0:
                planned = min(regain_min * 60.0, opts.usage_pause_max_s)
            else:
                planned = min(opts.usage_pause_s * 2 ** min(self._saturated, 16),
                              opts.usage_pause_max_s)
            now = time.monotonic()
            if self._usage_pause_until > now:  # already in a usage pause: answers to
                return False                    # requests sent before it don't stack
            self._saturated += 1
            self._usage_pause_until = now + planned * opts.backoff_scale
            self._pause_until = max(self._pause_until, self._usage_pause_until)
            self.usage_pauses += 1
        log.warning("Graph API usage at %.0f%%: pausing all requests for %.0f s",
                    pct if pct is not None else 100.0, planned)
        return False
