"""The collector's knobs and its one fatal error (shared by the client, the governor and
the collection)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


class TokenError(RuntimeError):
    """The access token is missing, invalid or expired (Graph API code 190): stop at once."""


@dataclass(frozen=True)
class CollectorOptions:
    """Tuning knobs; the defaults are the production values. All waits are in seconds."""
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    # transient failures (5xx, timeouts, resets, non-JSON): attempts per request
    max_attempts: int = 5
    retry_initial_s: float = 1.0
    retry_max_s: float = 30.0
    # rate-limit errors: unlimited retries, bounded by a per-account total wait
    throttle_initial_s: float = 30.0
    throttle_max_s: float = 300.0
    throttle_budget_s: float = 900.0
    # usage headers
    usage_slowdown_pct: float = 80.0
    usage_slowdown_max_s: float = 5.0   # spacing between request starts as usage → 100 %
    usage_pause_s: float = 60.0         # pause at ≥ 100 % without a regain estimate (doubling)
    usage_pause_max_s: float = 3600.0
    # paging
    window_days: int = 30
    page_size: int = 50
    max_pages: int = 40
    # tests: every wait and the run's time budget are multiplied by backoff_scale; `sleep`
    # receives the scaled seconds
    backoff_scale: float = 1.0
    sleep: Callable[[float], None] | None = None
    # daily collection (see collect.py); the defaults change nothing
    calls_per_hour: float = 0.0          # pace request starts (0: no pacing)
    hold_usage_pct: float | None = None  # usage ≥ this or a rate-limit answer: hold and probe
    hold_initial_s: float = 60.0         # first wait of a hold (doubling)
    hold_max_s: float = 900.0            # longest wait between two probes
    max_calls: int | None = None         # the run's call budget
    max_run_s: float | None = None       # the run's time budget (seconds)
    max_accounts: int | None = None      # the run's quota of accounts
