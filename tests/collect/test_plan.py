"""The collection window's planning (pure functions), with hand-computed numbers."""
import datetime as dt

import pytest

from dagster_project.collect.plan import (
    PlanSettings,
    first_cron_day,
    last_day_of_month,
    load_plan_settings,
    measured_calls_per_account,
    plan_day,
    window_days_left,
    window_start,
)


def test_default_plan_under_a_200_calls_per_hour_budget():
    # pace 200 × 0.8 = 160 calls/h; 20 h → 3 200 calls; 3 200 / 1.1 = 2 909.09 → 2 909 accounts
    p = plan_day(5000, 7)
    assert (p.pace_calls_per_hour, p.calls_per_run, p.accounts_per_day) == (160.0, 3200, 2909)
    assert (p.quota, p.window_capacity, p.days_needed, p.feasible) == (2909, 20363, 2, True)
    # the second day gets the rest
    p2 = plan_day(5000 - 2909, 6)
    assert (p2.quota, p2.days_needed, p2.feasible) == (2091, 1, True)
    # the last day alone cannot do 5 000
    last = plan_day(5000, 1)
    assert (last.quota, last.window_capacity, last.feasible) == (2909, 2909, False)
    # nothing left: nothing to do
    assert (plan_day(0, 3).quota, plan_day(0, 3).days_needed) == (0, 0)


def test_plan_uses_measured_calls_per_account_and_run_hours():
    # 1.5 calls/account, 10 h at 160/h = 1 600 calls → 1 066 accounts/day
    p = plan_day(3000, 2, run_hours=10, calls_per_account=1.5)
    assert (p.calls_per_run, p.accounts_per_day, p.window_capacity, p.feasible) == (
        1600, 1066, 2132, False)
    assert p.days_needed == 3
    # outside the window (days_left 0) a run is planned as the only one left
    assert plan_day(100, 0).window_capacity == 2909
    # no pacing (a local server): everything at once, no call budget
    free = plan_day(123, 3, calls_per_hour=0)
    assert (free.quota, free.calls_per_run, free.feasible) == (123, 0, True)
    with pytest.raises(ValueError):
        plan_day(-1, 3)
    with pytest.raises(ValueError):
        plan_day(10, 3, calls_per_account=0.5)


def test_measured_calls_per_account():
    assert measured_calls_per_account(330, 300) == 1.1
    assert measured_calls_per_account(60, 40) == 1.5
    assert measured_calls_per_account(5, 3) == 1.1       # too few accounts: assumed
    assert measured_calls_per_account(15, 25) == 1.0     # never below one call


def test_window_days():
    assert last_day_of_month(dt.date(2024, 2, 3)) == dt.date(2024, 2, 29)
    assert last_day_of_month(dt.date(2021, 12, 31)) == dt.date(2021, 12, 31)
    assert window_start(dt.date(2021, 7, 1), 7) == dt.date(2021, 7, 25)
    assert [window_days_left(dt.date(2021, 7, d), 7) for d in (24, 25, 30, 31)] == [0, 7, 2, 1]
    assert [window_days_left(dt.date(2023, 2, d), 7) for d in (21, 22, 28)] == [0, 7, 1]
    assert window_days_left(dt.date(2021, 7, 1), 28) == 0 and window_days_left(
        dt.date(2021, 7, 4), 28) == 28
    assert (first_cron_day(7), first_cron_day(1), first_cron_day(28)) == (22, 28, 1)


def test_settings_from_the_environment():
    assert load_plan_settings({}) == PlanSettings()
    s = load_plan_settings({"OBSERVATOIRE_COLLECTION_WINDOW_DAYS": "10",
                            "OBSERVATOIRE_GRAPH_CALLS_PER_HOUR": "0",
                            "OBSERVATOIRE_COLLECTION_RUN_HOURS": "6.5",
                            "OBSERVATOIRE_GRAPH_STOP_USAGE_PCT": "85"})
    assert (s.window_days, s.calls_per_hour, s.run_hours, s.stop_usage_pct) == (10, 0, 6.5, 85)
    with pytest.raises(ValueError, match="OBSERVATOIRE_COLLECTION_WINDOW_DAYS='seven'"):
        load_plan_settings({"OBSERVATOIRE_COLLECTION_WINDOW_DAYS": "seven"})
    with pytest.raises(ValueError, match="1 to 28"):
        load_plan_settings({"OBSERVATOIRE_COLLECTION_WINDOW_DAYS": "31"})
    with pytest.raises(ValueError, match="run hours"):
        load_plan_settings({"OBSERVATOIRE_COLLECTION_RUN_HOURS": "30"})


def test_readme_states_the_planner_numbers():
    from dagster_project.settings import PROJECT_ROOT

    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    p = plan_day(5000, 7)

    def fr(n: int) -> str:
        return f"{n:,}".replace(",", " ")

    row = (f"| 200 calls/h budget | {fr(p.calls_per_run)} | **{fr(p.accounts_per_day)}** | "
           f"**{fr(p.window_capacity)}** accounts |")
    assert row in readme
    assert f"{plan_day(36249, 7).days_needed}-day window" in readme
