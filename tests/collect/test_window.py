"""The daily collection window against the real-HTTP fake Graph API with a daily budget.

Three simulated days (the last three of March 2026), a budget of 12 calls a day that the
usage headers report as it is spent: each run paces its calls, holds when the headers
reach 90 %, stops when Meta says access comes back after the run's end, and the next day
resumes. By the end of the window every account has exactly
one landing line.
"""
from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
from collections import Counter

import pytest
from fake_graph_api import FakeGraphAPI, make_media
from typer.testing import CliRunner

from dagster_project.cli.app import app
from dagster_project.collect.graph_api import CollectorOptions, collect_month
from dagster_project.collect.plan import PlanSettings
from dagster_project.collect.window import (
    CollectionBusy,
    collect_today,
    exclusive_run,
    month_status,
    read_run_log,
)
from dagster_project.registry.accounts import Account
from dagster_project.settings import SEEDS_DIR, Settings

pytestmark = pytest.mark.timeout(120)

TOKEN = "EAAGdaily-W1ND0W-token-0123456789"
SCALE = 0.001      # every planned wait × 0.001: the 22.5 s pacing step lasts 22.5 ms
BUDGET = 12        # calls a simulated day
IN_FLIGHT = 4
DAYS = [dt.datetime(2026, 3, d, 0, 30, tzinfo=dt.UTC) for d in (29, 30, 31)]
MONTH = dt.date(2026, 3, 1)
PLAN = PlanSettings(window_days=3, calls_per_hour=200, run_hours=20, stop_usage_pct=90)


def departements(n: int) -> list[str]:
    with open(SEEDS_DIR / "departements.csv", encoding="utf-8") as fh:
        return [f"departement:{row['code']}" for row in csv.DictReader(fh)][:n]


def landing_lines(settings: Settings) -> list[dict]:
    out = []
    for path in sorted(settings.landing_dir.rglob("*.ndjson*")):
        if path.name.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                text = fh.read()
        else:
            text = path.read_text(encoding="utf-8")
        out += [json.loads(line) for line in text.splitlines()]
    return out


@pytest.fixture
def window(tmp_path):
    """The fake API with 24 accounts (2 needing two pages), a registry and settings."""
    api = FakeGraphAPI(token=TOKEN)
    api.daily_budget = BUDGET
    api.regain_minutes = 24 * 60  # a day's budget: access comes back tomorrow
    api.latency = 0.06  # longer than the pacing step: several requests in flight at a stop
    handles = [f"ville{i:02d}" for i in range(20)]
    for h in handles:
        api.add_account(h, media=make_media(3, newest=DAYS[0]))
    for h in ("bavarde", "prolixe"):  # 80 posts in 20 days: two pages of 50
        api.add_account(h, media=make_media(80, per_day=4, newest=DAYS[0], prefix=h))
        handles.append(h)
    api.add_account("disparue", not_found=True)
    api.add_account("perso", not_business=True)
    handles += ["disparue", "perso"]
    codes = departements(len(handles))
    accounts = [Account(h, c) for h, c in zip(handles, codes, strict=True)]
    registry = tmp_path / "accounts.csv"
    with open(registry, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["handle", "territory_id", "source_url", "checked_on"])
        for a in accounts:
            w.writerow([a.handle, a.territory_id, "", ""])
        w.writerow(["Pas Valide", codes[0], "", ""])  # rejected by the registry reader
    settings = Settings(data_dir=tmp_path / "data", dagster_home=tmp_path / "dagster",
                        accounts_file=registry, graph_url="", instagram_user_id=api.user_id,
                        access_token=TOKEN)
    with api:
        yield api, accounts, Settings(**{**settings.__dict__, "graph_url": api.url}), registry


def test_three_days_with_a_budget_that_runs_out(window, monkeypatch):
    api, accounts, settings, registry = window
    options = CollectorOptions(backoff_scale=SCALE)
    outcomes = []
    for i, day in enumerate(DAYS):
        if i:
            api.new_day()
        outcomes.append(collect_today(accounts, settings, plan_settings=PLAN, options=options,
                                      now=lambda day=day: day, max_in_flight=IN_FLIGHT))
    results = [o.result for o in outcomes]

    # days 1 and 2: the budget ran out, the usage headers stopped the run in time
    for r, calls in zip(results[:2], api.calls_by_day[:2], strict=True):
        assert r.stopped_reason == "usage" and r.remaining > 0 and r.collected > 0
        # after the response at ≥ 90 % (11th call) only requests already in flight went
        # out, then a single probe, whose answer (access back in 24 h) ends the day's run
        assert calls <= 11 + IN_FLIGHT - 1 + 1
        assert r.requests == calls
        assert r.dropped <= IN_FLIGHT  # only accounts whose requests were under way
    # day 3: the rest, and the window is done
    assert results[2].stopped_reason is None and results[2].remaining == 0
    assert outcomes[2].status.remaining == 0 and outcomes[2].status.collected == 24
    # each run planned the rest of the month over the days left, and skipped what was done
    assert [o.plan.days_left for o in outcomes] == [3, 2, 1]
    assert [o.plan.remaining for o in outcomes] == [24, 24 - results[0].collected,
                                                   results[2].collected]
    assert [r.skipped for r in results] == [0, results[0].collected,
                                            results[0].collected + results[1].collected]

    # every account exactly once: none twice, nothing lost
    lines = landing_lines(settings)
    per_handle = Counter(rec["handle"] for rec in lines)
    assert per_handle == Counter({a.handle: 1 for a in accounts})
    status = {rec["handle"]: rec["status"] for rec in lines}
    assert status["disparue"] == "not_found" and status["perso"] == "not_business"
    assert sum(s == "ok" for s in status.values()) == 22
    for h in ("bavarde", "prolixe"):  # paged accounts complete even if dropped mid-paging
        rec = next(r for r in lines if r["handle"] == h)
        assert len(rec["business_discovery"]["media"]["data"]) == 80
    assert all(rec["fetched_at"].startswith("2026-03-") for rec in lines)
    assert sum(r.collected for r in results) == 24
    # requests beyond the budget (answered code 4) were only those already in flight
    assert sum(r.requests for r in results) == api.total_requests

    # the pacing held: request starts at least 22.5 ms (22.5 s scaled) apart on average
    times = api.request_times
    assert times[-1] - times[0] >= (len(times) - len(DAYS)) * 0.0225 * 0.9

    # a fourth run in the window finds nothing to do and sends nothing
    again = collect_today(accounts, settings, plan_settings=PLAN, options=options,
                          now=lambda: DAYS[-1] + dt.timedelta(hours=3), max_in_flight=IN_FLIGHT)
    assert (again.result.requests, again.result.skipped, again.result.files) == (0, 24, [])
    assert api.total_requests == sum(api.calls_by_day)

    # the run log: a started and a finished line per run, outside the landing folder, and
    # for the two days stopped by the budget the hold that ended with the run
    log = read_run_log(settings.data_dir, MONTH)
    assert [e["event"] for e in log] == (["started", "paused", "finished"] * 2
                                         + ["started", "finished"] * 2)
    held = [e for e in log if e["event"] == "paused"]
    assert [(e["outcome"], e["probes"]) for e in held] == [("run ended", 1)] * 2
    assert [e["stopped_reason"] for e in log if e["event"] == "finished"] == [
        "usage", "usage", None, None]
    assert not any(p.name.endswith(".jsonl") for p in settings.landing_dir.rglob("*"))
    st = month_status(accounts, settings, MONTH, today=DAYS[-1].date(), plan_settings=PLAN)
    assert st.by_status == {"ok": 22, "not_found": 1, "not_business": 1, "error": 0,
                            "not_collected": 0}
    assert st.requests == api.total_requests and len(st.runs) == 4

    # observatoire status: one screen for the month
    monkeypatch.setenv("OBSERVATOIRE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("OBSERVATOIRE_COLLECTION_WINDOW_DAYS", "3")
    res = CliRunner().invoke(app, ["status", "--accounts", str(registry), "--month", "2026-03",
                                   "--data-dir", str(settings.data_dir)],
                             env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    out = res.output
    assert "24 / 24 (100 %)" in out
    assert "ok 22 · not_found 1 · not_business 1" in out
    assert f"{api.total_requests} in 4 run(s)" in out
    assert "1 rejected row(s)" in out and "every account is collected" in out
    assert "2 hold(s)" in out
    assert TOKEN not in out


def test_run_budgets_stop_starting_accounts(window):
    """max_accounts and max_calls: no new account once reached, those in flight finish."""
    api, accounts, settings, _ = window
    api.daily_budget = None
    now = lambda: DAYS[0]
    first = collect_month(accounts[:10], MONTH, settings, now=now, max_in_flight=2,
                          options=CollectorOptions(backoff_scale=SCALE, max_accounts=3))
    assert (first.collected, first.stopped_reason, first.remaining, first.dropped) == (
        3, "quota", 7, 0)
    second = collect_month(accounts[:10], MONTH, settings, now=now, max_in_flight=2,
                           options=CollectorOptions(backoff_scale=SCALE, max_calls=4))
    assert second.stopped_reason == "call_budget" and second.requests <= 4
    assert second.collected == second.requests and second.skipped == 3
    third = collect_month(accounts[:10], MONTH, settings, now=now, max_in_flight=2,
                          options=CollectorOptions(backoff_scale=SCALE, max_calls=100))
    assert third.stopped_reason is None and third.remaining == 0
    assert Counter(r["handle"] for r in landing_lines(settings)) == Counter(
        {a.handle: 1 for a in accounts[:10]})


def test_without_a_stop_mark_usage_still_pauses(window):
    """Default options (e.g. `accounts check`): the usage headers pause, they do not stop."""
    api, accounts, settings, _ = window
    api.daily_budget = None
    api.usage_schedule = [50, 100, 40]
    waits: list[float] = []
    res = collect_month(accounts[:5], MONTH, settings, now=lambda: DAYS[0], max_in_flight=1,
                        options=CollectorOptions(backoff_scale=SCALE, sleep=waits.append))
    assert res.stopped_reason is None and res.collected == 5 and res.usage_pauses == 1


def test_one_collection_run_of_a_month_at_a_time(window):
    """Two runs at once would fetch the same accounts: the second is refused, sends nothing."""
    api, accounts, settings, _ = window
    with exclusive_run(settings.data_dir, MONTH), pytest.raises(CollectionBusy,
                                                                match="in progress"):
        collect_today(accounts, settings, plan_settings=PLAN, now=lambda: DAYS[0],
                      options=CollectorOptions(backoff_scale=SCALE))
    assert api.total_requests == 0 and read_run_log(settings.data_dir, MONTH) == []
    done = collect_today(accounts[:3], settings, plan_settings=PLAN, now=lambda: DAYS[0],
                         options=CollectorOptions(backoff_scale=SCALE))
    assert done.result.collected == 3  # the lock is free again
