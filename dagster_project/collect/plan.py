"""Planning the month's Graph API collection window (pure functions, unit-tested).

Meta allows an app about 200 `business_discovery` calls per hour (the usage headers say
how much of it is spent). A national registry (5 000+ accounts) therefore cannot be
collected in one evening: the collection runs once a day over the last `window_days`
days of the month, each run paced below the hourly budget, and resumes where the
previous one stopped.

The plan of a day:

- pace = `calls_per_hour × usage_target` (80 % of the budget: the usage headers stay
  below the 90 % mark at which a run stops, with room left for `accounts check`);
- calls a run may make = pace × `run_hours`;
- accounts a run sustains = those calls / `calls_per_account` (1 call per account, plus
  one per extra page of posts: measured on the month's earlier runs, else 1.1);
- today's quota = min(accounts not collected yet, accounts a run sustains): the window
  is front-loaded, so a failed day late in the window costs nothing.
"""
from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_WINDOW_DAYS = 7
DEFAULT_CALLS_PER_HOUR = 200.0
DEFAULT_RUN_HOURS = 20.0
DEFAULT_USAGE_TARGET = 0.8
DEFAULT_STOP_USAGE_PCT = 90.0
ASSUMED_CALLS_PER_ACCOUNT = 1.1
MIN_ACCOUNTS_MEASURED = 20  # below this, the measured calls/account is noise: assume


@dataclass(frozen=True)
class PlanSettings:
    """The collection window's knobs (environment variables in brackets)."""
    window_days: int = DEFAULT_WINDOW_DAYS              # OBSERVATOIRE_COLLECTION_WINDOW_DAYS
    calls_per_hour: float = DEFAULT_CALLS_PER_HOUR      # OBSERVATOIRE_GRAPH_CALLS_PER_HOUR
    run_hours: float = DEFAULT_RUN_HOURS                # OBSERVATOIRE_COLLECTION_RUN_HOURS
    usage_target: float = DEFAULT_USAGE_TARGET
    stop_usage_pct: float = DEFAULT_STOP_USAGE_PCT      # OBSERVATOIRE_GRAPH_STOP_USAGE_PCT

    def __post_init__(self) -> None:
        if not 1 <= self.window_days <= 28:
            raise ValueError(f"collection window of {self.window_days} days: expected 1 to 28 "
                             "(the last N days of every month, February included)")
        if self.calls_per_hour < 0:
            raise ValueError("calls per hour must be ≥ 0 (0 = no pacing)")
        if not 0 < self.run_hours <= 24:
            raise ValueError(f"run hours {self.run_hours}: expected more than 0 and at most 24")
        if not 0 < self.usage_target <= 1:
            raise ValueError("usage target must be in (0, 1]")
        if not 0 < self.stop_usage_pct <= 100:
            raise ValueError("stop usage percentage must be in (0, 100]")


def load_plan_settings(environ: Mapping[str, str] | None = None) -> PlanSettings:
    """PlanSettings from the environment; a malformed value is a clear ValueError."""
    env = os.environ if environ is None else environ

    def number(name: str, default: float, kind=float):
        raw = (env.get(name) or "").strip()
        if not raw:
            return default
        try:
            return kind(raw)
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not a number") from None

    return PlanSettings(
        window_days=number("OBSERVATOIRE_COLLECTION_WINDOW_DAYS", DEFAULT_WINDOW_DAYS, int),
        calls_per_hour=number("OBSERVATOIRE_GRAPH_CALLS_PER_HOUR", DEFAULT_CALLS_PER_HOUR),
        run_hours=number("OBSERVATOIRE_COLLECTION_RUN_HOURS", DEFAULT_RUN_HOURS),
        stop_usage_pct=number("OBSERVATOIRE_GRAPH_STOP_USAGE_PCT", DEFAULT_STOP_USAGE_PCT))


def last_day_of_month(day: dt.date) -> dt.date:
    nxt = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return nxt - dt.timedelta(days=1)


def window_start(day: dt.date, window_days: int) -> dt.date:
    """First day of the collection window of `day`'s month."""
    return last_day_of_month(day) - dt.timedelta(days=window_days - 1)


def window_days_left(day: dt.date, window_days: int) -> int:
    """Days of the window from `day` to the month's end, `day` included; 0 before it."""
    if day < window_start(day, window_days):
        return 0
    return (last_day_of_month(day) - day).days + 1


def first_cron_day(window_days: int) -> int:
    """The earliest day of month any window can start on (February's 28 days)."""
    return max(1, 29 - window_days)


def measured_calls_per_account(requests: int, accounts: int,
                               default: float = ASSUMED_CALLS_PER_ACCOUNT) -> float:
    """Calls per collected account measured over the month's runs (at least 1)."""
    if accounts < MIN_ACCOUNTS_MEASURED or requests <= 0:
        return default
    return max(1.0, requests / accounts)


@dataclass(frozen=True)
class DayPlan:
    remaining: int                # valid accounts not collected yet this month
    days_left: int                # window days from today to the month's end (today included)
    calls_per_hour: float         # Meta's hourly budget
    pace_calls_per_hour: float    # the rate the run keeps to
    run_hours: float
    calls_per_account: float
    calls_per_run: int            # the run's call budget
    accounts_per_day: int         # what one daily run sustains
    quota: int                    # accounts to collect today
    window_capacity: int          # accounts the rest of the window can still collect
    days_needed: int              # daily runs needed for the remaining accounts
    feasible: bool                # remaining ≤ window_capacity

    def as_metadata(self) -> dict:
        return {
            "plan_remaining": self.remaining, "plan_days_left": self.days_left,
            "plan_quota": self.quota, "plan_accounts_per_day": self.accounts_per_day,
            "plan_calls_per_run": self.calls_per_run,
            "plan_pace_calls_per_hour": round(self.pace_calls_per_hour, 1),
            "plan_run_hours": round(self.run_hours, 2),
            "plan_calls_per_account": round(self.calls_per_account, 3),
            "plan_window_capacity": self.window_capacity, "plan_days_needed": self.days_needed,
            "plan_feasible": self.feasible,
        }


def plan_day(remaining: int, days_left: int, *,
             calls_per_hour: float = DEFAULT_CALLS_PER_HOUR,
             run_hours: float = DEFAULT_RUN_HOURS,
             calls_per_account: float = ASSUMED_CALLS_PER_ACCOUNT,
             usage_target: float = DEFAULT_USAGE_TARGET) -> DayPlan:
    """Today's share of the month's collection (see the module docstring).

    `calls_per_hour = 0` means no pacing (a local or test server): one run then has no
    call budget and sustains every remaining account.
    """
    if remaining < 0 or days_left < 0:
        raise ValueError("remaining accounts and days left must be ≥ 0")
    if calls_per_account < 1:
        raise ValueError("an account costs at least one call")
    days = max(1, days_left)  # a run outside the window is the only run left
    if calls_per_hour <= 0:
        return DayPlan(remaining, days_left, 0.0, 0.0, run_hours, calls_per_account,
                       calls_per_run=0, accounts_per_day=remaining, quota=remaining,
                       window_capacity=remaining, days_needed=1 if remaining else 0,
                       feasible=True)
    pace = calls_per_hour * usage_target
    calls = math.floor(pace * run_hours + 1e-9)
    per_day = math.floor(calls / calls_per_account + 1e-9)
    capacity = per_day * days
    needed = math.ceil(remaining / per_day) if per_day else (0 if remaining == 0 else 10**6)
    return DayPlan(remaining, days_left, calls_per_hour, pace, run_hours, calls_per_account,
                   calls_per_run=calls, accounts_per_day=per_day,
                   quota=min(remaining, per_day), window_capacity=capacity,
                   days_needed=needed, feasible=remaining <= capacity)
