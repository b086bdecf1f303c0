"""Throughput of the Graph API collector against the local fake (not a test).

    .venv/bin/python tests/support/measure_throughput.py [--accounts 2000] [--latency 0.05]
        [--workers 8] [--scale 0.01] [--mode collect|check]

`--mode check` measures `observatoire accounts check` (one page of one post per account,
results appended to a CSV) instead of the monthly collection.

Scenario "no throttling": every account answers after `latency` seconds (one page, 10 % of
accounts need a second page). Scenario "throttling": same, plus 5 % of accounts rate-limited
once (code 4), 2 % answered HTTP 429 with Retry-After: 1, and usage headers rising from 60 %
to 95 % with one 100 % reading (regain in 1 min). Waits are multiplied by `--scale` (default
0.01: a 30 s backoff lasts 0.3 s) so the run stays short; the report also gives the time the
same waits would take unscaled.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

from fake_graph_api import FakeGraphAPI, make_media

from dagster_project.collect.graph_api import CollectorOptions, collect_month
from dagster_project.months import current_month
from dagster_project.registry.accounts import Account
from dagster_project.registry.check import ToCheck, check_accounts
from dagster_project.settings import Settings


def run(n: int, latency: float, workers: int, throttled: bool, scale: float,
        mode: str = "collect") -> dict:
    api = FakeGraphAPI(token="EAAG-bench-token")
    api.latency = latency
    handles = [f"acct{i:05d}" for i in range(n)]
    media_short = make_media(20, per_day=1)
    media_long = make_media(120, per_day=4)
    for i, h in enumerate(handles):
        api.add_account(h, media=media_long if i % 10 == 0 else media_short)
        if throttled and i % 20 == 7:
            api.scenario(h, throttle=1, throttle_code=4)
        elif throttled and i % 50 == 11:
            api.scenario(h, throttle=1, throttle_code=None, retry_after="1")
    if throttled:
        ramp = [60 + 35 * k / (n // 2) for k in range(n // 2)]
        api.usage_schedule = ramp[: n // 4] + [100] + ramp[n // 4:] + [70] * n
        api.regain_minutes = 1
    planned: list[float] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            planned.append(seconds / scale)
        time.sleep(seconds)

    with api, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(Path(tmp), Path(tmp) / "dagster", Path(tmp) / "a.csv", api.url,
                            api.user_id, api.token)
        accounts = [Account(h, f"commune:{i:05d}") for i, h in enumerate(handles)]
        t0 = time.perf_counter()
        if mode == "check":
            counts = check_accounts(
                [ToCheck(a.handle, a.territory_id, a.handle, False) for a in accounts],
                Path(tmp) / "checked.csv", settings, max_in_flight=workers,
                options=CollectorOptions(page_size=1, max_pages=1, backoff_scale=scale,
                                         sleep=sleep))
            res = argparse.Namespace(ok=counts.get("ok", 0), error=counts.get("error", 0),
                                     requests=api.total_requests, throttled=0,
                                     throttle_errors=0, usage_pauses=0, usage_slowdowns=0)
        else:
            res = collect_month(accounts, current_month(), settings, max_in_flight=workers,
                                options=CollectorOptions(backoff_scale=scale, sleep=sleep))
        elapsed = time.perf_counter() - t0
    return {"scenario": "throttling" if throttled else "no throttling", "workers": workers,
            "accounts": n, "ok": res.ok, "error": res.error, "requests": res.requests,
            "elapsed_s": elapsed, "accounts_per_s": n / elapsed,
            "throttled": res.throttled, "throttle_errors": res.throttle_errors,
            "usage_pauses": res.usage_pauses, "usage_slowdowns": res.usage_slowdowns,
            "max_in_flight_seen": api.max_in_flight,
            "planned_wait_s_per_worker": sum(planned) / workers}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--accounts", type=int, default=2000)
    p.add_argument("--latency", type=float, default=0.05)
    p.add_argument("--workers", type=int, nargs="+", default=[8])
    p.add_argument("--scale", type=float, default=0.01)
    p.add_argument("--mode", choices=("collect", "check"), default="collect")
    args = p.parse_args()
    print(f"{args.mode}: {args.accounts} accounts, {args.latency * 1000:.0f} ms simulated latency, "
          f"waits scaled ×{args.scale}")
    for workers in args.workers:
        for throttled in (False, True):
            r = run(args.accounts, args.latency, workers, throttled, args.scale, args.mode)
            print(f"- {r['scenario']:<14} workers={r['workers']:<3} ok={r['ok']} error={r['error']} "
                  f"requests={r['requests']} elapsed={r['elapsed_s']:.1f}s "
                  f"→ {r['accounts_per_s']:.1f} accounts/s "
                  f"(max in flight seen {r['max_in_flight_seen']})")
            if throttled:
                print(f"  throttle waits={r['throttled']} (errors {r['throttle_errors']}, "
                      f"usage pauses {r['usage_pauses']}, slowdowns {r['usage_slowdowns']}); "
                      f"unscaled these waits would add ≈ "
                      f"{r['planned_wait_s_per_worker'] / 60:.1f} min per worker")


if __name__ == "__main__":
    main()
