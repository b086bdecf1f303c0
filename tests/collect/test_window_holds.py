"""Throttling waits instead of quitting: Meta's rolling one-hour limit, compressed in time.

The stand-in raises X-App-Usage by 1/12 per call; the 12th call of a cycle starts a spell
of one real second in which every request is answered code 4 at 100 %. The daily
collection holds at 90 % (no request but a single probe at a time), waits out the spell
and resumes: every collectable account of the 22 lands in one run, exactly once.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from fake_graph_api import FakeGraphAPI, make_media
from test_window import TOKEN, departements, landing_lines

from dagster_project.collect.graph_api import CollectorOptions
from dagster_project.collect.plan import PlanSettings
from dagster_project.collect.window import collect_today, read_run_log
from dagster_project.registry.accounts import Account
from dagster_project.settings import Settings

pytestmark = pytest.mark.timeout(120)

SCALE = 0.01     # planned waits × 0.01: the first 60 s wait of a hold lasts 0.6 s
LAST_DAY = dt.datetime(2026, 3, 31, 0, 30, tzinfo=dt.UTC)   # the window's last day
MONTH = dt.date(2026, 3, 1)
PLAN = PlanSettings(window_days=3, calls_per_hour=3600, run_hours=20, stop_usage_pct=90)


@pytest.fixture
def bursty(tmp_path):
    api = FakeGraphAPI(token=TOKEN)
    api.burst = (12, 1.0)
    api.latency = 0.02
    handles = [f"ville{i:02d}" for i in range(20)]
    for h in handles:
        api.add_account(h, media=make_media(3, newest=LAST_DAY))
    api.add_account("disparue", not_found=True)
    api.add_account("perso", not_business=True)
    handles += ["disparue", "perso"]
    accounts = [Account(h, c) for h, c in
                zip(handles, departements(len(handles)), strict=True)]
    with api:
        yield api, accounts, Settings(
            data_dir=tmp_path / "data", dagster_home=tmp_path / "dagster",
            accounts_file=tmp_path / "accounts.csv", graph_url=api.url,
            instagram_user_id=api.user_id, access_token=TOKEN)


def test_bursts_of_throttling_are_waited_out_in_one_run(bursty):
    api, accounts, settings = bursty
    out = collect_today(accounts, settings, plan_settings=PLAN, now=lambda: LAST_DAY,
                        options=CollectorOptions(backoff_scale=SCALE), max_in_flight=4)
    r = out.result
    # one run, nothing left: 20 ok + not_found + not_business
    assert r.stopped_reason is None and r.remaining == 0
    assert (r.collected, r.dropped) == (22, 0)
    lines = landing_lines(settings)
    assert Counter(rec["handle"] for rec in lines) == Counter({a.handle: 1 for a in accounts})
    assert sum(rec["status"] == "ok" for rec in lines) == 20
    # the stand-in throttled at least once and every hold ended by resuming
    assert api.bursts >= 1
    resumed = [p for p in r.pauses if p["outcome"] == "resumed"]
    assert resumed and len(resumed) >= api.bursts - 1
    # a hold still on when the last account landed ends with the run, nothing lost
    assert all(p["outcome"] == "run ended" for p in r.pauses[len(resumed):])
    # each hold that resumed waited out the spell (1 s), with few probes (doubling waits)
    assert all(p["waited_s"] >= 0.9 and 1 <= p["probes"] <= 4 for p in resumed)
    assert r.paused_s >= 0.9 * len(resumed)
    # while a hold was on, a single request at a time went out: calls beyond the 12 of each
    # cycle are the requests in flight when it began plus the probes
    assert api.total_requests <= 22 + sum(p["probes"] for p in r.pauses) + 4 * len(r.pauses)

    # the run log has one line per hold, between started and finished
    log = read_run_log(settings.data_dir, MONTH)
    events = [e["event"] for e in log]
    assert events[0] == "started" and events[-1] == "finished"
    assert events.count("paused") == len(r.pauses)
    finished = log[-1]
    assert finished["pauses"] == len(r.pauses) and finished["stopped_reason"] is None
    print(f"\nthrottling stand-in: {api.total_requests} requests, {api.bursts} spell(s), "
          f"{len(r.pauses)} hold(s), {r.paused_s:.1f} s waited")


@pytest.mark.parametrize("code", [4, 17, 32, 613])
def test_each_rate_limit_code_holds_then_resumes(tmp_path, code):
    """Codes 4 (app), 17 (user), 32 (page) and 613 (custom limit) hold the run; none fails
    an account or the run."""
    api = FakeGraphAPI(token=TOKEN)
    handles = [f"ville{i:02d}" for i in range(6)]
    for h in handles:
        api.add_account(h, media=make_media(2, newest=LAST_DAY))
    api.scenario("ville03", throttle=2, throttle_code=code)
    accounts = [Account(h, c) for h, c in zip(handles, departements(6), strict=True)]
    with api:
        settings = Settings(data_dir=tmp_path / "data", dagster_home=tmp_path / "dagster",
                            accounts_file=tmp_path / "accounts.csv", graph_url=api.url,
                            instagram_user_id=api.user_id, access_token=TOKEN)
        r = collect_today(accounts, settings, plan_settings=PLAN, now=lambda: LAST_DAY,
                          options=CollectorOptions(backoff_scale=SCALE), max_in_flight=2).result
    assert (r.ok, r.error, r.stopped_reason, r.remaining) == (6, 0, None, 0)
    assert api.requests_by_handle["ville03"] == 3          # two rate-limit answers, then ok
    assert 1 <= len(r.pauses) <= 2
    assert all(p["reason"].startswith(f"rate limited, code {code}") for p in r.pauses)
    assert all(p["outcome"] == "resumed" and p["probes"] >= 1 for p in r.pauses)
    # each hold waited at least its first planned wait (60 s × SCALE)
    assert all(p["waited_s"] >= 60 * SCALE * 0.9 for p in r.pauses)
    logged = [e for e in read_run_log(settings.data_dir, MONTH) if e["event"] == "paused"]
    assert [e["reason"] for e in logged] == [p["reason"] for p in r.pauses]


def test_throttling_past_the_runs_end_stops_and_the_next_run_finishes(bursty, caplog):
    """A spell longer than the run: the run stops cleanly when its next probe would come
    after its end, names the accounts left, and a later run lands them, each once."""
    api, accounts, settings = bursty
    api.burst = (12, 60.0)          # throttled for a minute once 12 calls are made
    short = PlanSettings(window_days=3, calls_per_hour=3600, run_hours=0.05,   # 180 s
                         stop_usage_pct=90)
    caplog.set_level("WARNING", logger="dagster_project")
    first = collect_today(accounts, settings, plan_settings=short, now=lambda: LAST_DAY,
                          options=CollectorOptions(backoff_scale=SCALE), max_in_flight=4).result
    assert first.stopped_reason == "usage"
    landed = {rec["handle"] for rec in landing_lines(settings)}
    assert 0 < len(landed) < len(accounts)
    left = [a.handle for a in accounts if a.handle not in landed]
    assert first.left == left and first.remaining == len(left)
    assert f"{len(left)} accounts left for the next run" in caplog.text
    assert ", ".join(left) in caplog.text
    # the hold was still on when the run ended: recorded as such, in the run log too
    assert [p["outcome"] for p in first.pauses] == ["run ended"]
    log = read_run_log(settings.data_dir, MONTH)
    assert [e["event"] for e in log] == ["started", "paused", "finished"]
    assert log[-1]["left"] == left and log[-1]["stopped_reason"] == "usage"

    api.burst = None                 # Meta's window has rolled on
    before = api.total_requests
    second = collect_today(accounts, settings, plan_settings=short,
                           now=lambda: LAST_DAY + dt.timedelta(hours=1),
                           options=CollectorOptions(backoff_scale=SCALE), max_in_flight=4).result
    assert (second.stopped_reason, second.remaining, second.skipped) == (
        None, 0, len(landed))
    assert api.total_requests - before == len(left)     # one call per account left
    lines = landing_lines(settings)
    assert Counter(rec["handle"] for rec in lines) == Counter({a.handle: 1 for a in accounts})
