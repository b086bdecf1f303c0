"""The production Graph API collector against a real HTTP fake (tests/support/fake_graph_api.py)."""
from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import re
import threading

import pytest
from fake_graph_api import FakeGraphAPI, make_media

from dagster_project.collect.graph_api import (
    CollectionResult,
    CollectorOptions,
    TokenError,
    build_fields,
    classify_error,
    collect_month,
    parse_usage,
)
from dagster_project.months import add_months, current_month
from dagster_project.registry.accounts import Account
from dagster_project.settings import Settings

pytestmark = pytest.mark.timeout(60)

TOKEN = "EAAGtest-S3CR3T-token-0123456789abcdef"
SCALE = 0.001  # every planned wait × 0.001: a 30 s backoff lasts 30 ms
FILE_RE = re.compile(r"^graph_api-\d{8}T\d{6}-\d{4}\.ndjson\.gz$")


class SleepRecorder:
    """Injected sleep: records the planned (unscaled) seconds, really sleeps the scaled ones."""

    def __init__(self) -> None:
        self.planned: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self.lock:
            self.planned.append(seconds / SCALE)
        threading.Event().wait(seconds)


@pytest.fixture
def api():
    fake = FakeGraphAPI(token=TOKEN)
    with fake:
        yield fake


@pytest.fixture
def settings(api, tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", dagster_home=tmp_path / "dagster",
                    accounts_file=tmp_path / "accounts.csv", graph_url=api.url,
                    instagram_user_id=api.user_id, access_token=TOKEN)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


def opts(sleeps: SleepRecorder | None = None, **kw) -> CollectorOptions:
    base = {"backoff_scale": SCALE, "sleep": sleeps}
    base.update(kw)
    return CollectorOptions(**base)


def accounts(*handles: str) -> list[Account]:
    return [Account(h, f"commune:{i:05d}") for i, h in enumerate(handles, start=1)]


def landing_lines(settings: Settings) -> list[dict]:
    out = []
    for path in sorted(settings.landing_dir.rglob("*.ndjson.gz")):
        out += [json.loads(line) for line in read_text(path).splitlines()]
    return out


def by_handle(settings: Settings) -> dict[str, dict]:
    return {rec["handle"]: rec for rec in landing_lines(settings)}


def all_landing_text(settings: Settings) -> str:
    return "".join(read_text(p) for p in settings.landing_dir.rglob("*") if p.is_file())


def read_text(path) -> str:
    """A landing file's text (decompressed: a token would not show in gzip bytes)."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def no_temp_files(settings: Settings) -> bool:
    return not [p for p in settings.data_dir.rglob("*") if p.name.endswith(".tmp")]


MONTH = current_month()


# --------------------------------------------------------------------------- pure helpers

def test_build_fields_and_cursor_validation():
    f = build_fields("gers.le_dpt")
    assert f == ("business_discovery.username(gers.le_dpt){id,username,name,followers_count,"
                 "follows_count,media_count,media.limit(50){id,timestamp,media_type,"
                 "media_product_type,like_count,comments_count,permalink,view_count}}")
    assert "media.after(QUJD).limit(50){" in build_fields("gers", "QUJD")
    with pytest.raises(ValueError):
        build_fields("bad)handle{")
    with pytest.raises(ValueError):
        build_fields("gers", "abc){x")


def test_classify_error_mapping():
    assert classify_error(110, 2207013, "Invalid user id") == "not_found"
    assert classify_error(100, 2207013, "Invalid parameter") == "not_found"
    assert classify_error(110, None, "Invalid user id") == "not_found"
    assert classify_error(100, None, "Cannot find User") == "not_found"
    assert classify_error(100, 2207065, "Invalid parameter") == "not_business"
    assert classify_error(100, None, "The user must be a business or creator account") \
        == "not_business"
    assert classify_error(100, None, "User is not an Instagram Business Account") \
        == "not_business"
    assert classify_error(100, None, "Invalid parameter") == "error"
    assert classify_error(10, None, "Application does not have permission") == "error"


def test_parse_usage_headers():
    headers = {
        "X-App-Usage": json.dumps({"call_count": 12, "total_cputime": 40, "total_time": 9}),
        "X-Business-Use-Case-Usage": json.dumps({"1784": [
            {"type": "instagram", "call_count": 85, "total_cputime": 3, "total_time": 4,
             "estimated_time_to_regain_access": 0}]}),
    }
    assert parse_usage(headers) == (85.0, 0.0)
    assert parse_usage({}) == (None, 0.0)
    assert parse_usage({"X-App-Usage": "not json"}) == (None, 0.0)
    buc = {"X-Business-Use-Case-Usage": json.dumps({"1": [
        {"call_count": 100, "total_cputime": 1, "total_time": 1,
         "estimated_time_to_regain_access": 7}]})}
    assert parse_usage(buc) == (100.0, 7.0)


# --------------------------------------------------------------------------- paging

def test_multipage_media_merged_and_window_stops_paging(api, settings):
    # 4 posts a day, 400 posts = 8 pages of 50: page 3 reaches 37 days back → 3 requests.
    api.add_account("dense", media=make_media(400, per_day=4))
    api.add_account("sparse", media=make_media(400, per_day=0.5))  # page 1 already > 30 days
    api.add_account("tiny", media=make_media(7))                   # single short page
    api.add_account("empty", media=[])
    api.add_account("overlap", media=make_media(200, per_day=4, prefix="o"),
                    page_overlap=True)                              # pages overlap by one item
    res = collect_month(accounts("dense", "sparse", "tiny", "empty", "overlap"), MONTH,
                        settings, options=opts())
    assert (res.ok, res.error) == (5, 0)
    assert api.count("dense") == 3
    assert api.count("sparse") == 1
    assert api.count("tiny") == 1
    assert api.count("empty") == 1
    assert api.count("overlap") == 3
    assert res.requests == 3 + 1 + 1 + 1 + 3
    lines = by_handle(settings)
    dense = lines["dense"]["business_discovery"]
    ids = [m["id"] for m in dense["media"]["data"]]
    assert len(ids) == 150 and len(set(ids)) == 150
    assert ids == [f"m{i:06d}" for i in range(150)]  # newest first, pages in order
    assert "paging" not in dense["media"]
    assert dense["followers_count"] == 1000 and dense["username"] == "dense"
    over = [m["id"] for m in lines["overlap"]["business_discovery"]["media"]["data"]]
    assert len(over) == len(set(over)) == 148  # 0-49, 49-98, 98-147: duplicates dropped
    assert len(lines["tiny"]["business_discovery"]["media"]["data"]) == 7
    # every request after the first carries media.after(<cursor>) from the previous page
    dense_paths = [p for p in api.raw_paths if "username%28dense%29" in p]
    assert sum("media.after%28" in p for p in dense_paths) == 2


# --------------------------------------------------------------------------- error mapping

def test_error_codes_map_to_statuses_and_others_go_on(api, settings):
    for h in ("ok1", "ok2", "ok3"):
        api.add_account(h, media=make_media(5))
    api.add_account("deleted", not_found=True)           # 110 / 2207013
    api.add_account("perso", not_business=True)          # 100 / 2207065
    api.add_account("perso2", not_business_msg=True)     # 100, message only
    api.add_account("weird", bad_param=True)             # 100 Invalid parameter
    res = collect_month(accounts("ok1", "deleted", "ok2", "ghost", "perso", "perso2", "weird",
                                 "ok3"), MONTH, settings, options=opts())
    assert (res.ok, res.not_found, res.not_business, res.error) == (3, 2, 2, 1)
    lines = by_handle(settings)
    assert lines["deleted"]["status"] == "not_found"
    assert lines["deleted"]["error"]["code"] == 110
    assert lines["deleted"]["error"]["subcode"] == 2207013
    assert lines["deleted"]["business_discovery"] is None
    assert lines["ghost"]["status"] == "not_found"          # unknown to the server
    assert lines["perso"]["status"] == "not_business"
    assert lines["perso"]["error"] == {"code": 100, "subcode": 2207065,
                                       "message": "Invalid parameter — Not a business account"}
    assert lines["perso2"]["status"] == "not_business"
    assert lines["weird"]["status"] == "error" and lines["weird"]["error"]["code"] == 100
    for h in ("ok1", "ok2", "ok3"):
        assert lines[h]["status"] == "ok" and lines[h]["error"] is None
    # definitive errors are not retried
    for h in ("deleted", "ghost", "perso", "perso2", "weird"):
        assert api.count(h) == 1
    for rec in lines.values():
        assert set(rec) == {"handle", "fetched_at", "source", "status", "error",
                            "business_discovery"}
        assert rec["source"] == "graph_api"
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", rec["fetched_at"])


def test_token_error_stops_everything_without_partial_file(api, settings, caplog):
    caplog.set_level(logging.DEBUG)
    handles = [f"acc{i:02d}" for i in range(20)]
    for h in handles:
        api.add_account(h, media=make_media(3))
    api.expire_token_after = 12   # requests 13+ get code 190 (subcode 463, token echoed)
    with pytest.raises(TokenError) as info:
        collect_month(accounts(*handles), MONTH, settings, max_in_flight=1, batch_size=5,
                      options=opts())
    text = str(info.value)
    assert "190" in text and "INSTAGRAM_ACCESS_TOKEN" in text
    assert TOKEN not in text and TOKEN not in repr(info.value)
    assert "***" in text  # the server echoed the token: redacted
    files = sorted(settings.landing_dir.rglob("*.ndjson.gz"))
    assert len(files) == 2  # the two full batches; the in-flight batch (2 accounts) is dropped
    assert all(len(read_text(p).splitlines()) == 5 for p in files)
    assert api.total_requests == 13  # stopped at once: nothing after the 190
    assert no_temp_files(settings)
    assert TOKEN not in all_landing_text(settings)
    assert TOKEN not in caplog.text


def test_wrong_token_at_first_request(api, settings):
    api.add_account("gers", media=make_media(3))
    api.add_account("eure", media=make_media(3))
    bad = Settings(**{**settings.__dict__, "access_token": "EAAG-wrong-token-XYZ"})
    assert "EAAG-wrong-token-XYZ" not in repr(bad)
    with pytest.raises(TokenError) as info:
        collect_month(accounts("gers", "eure"), MONTH, bad, max_in_flight=1, options=opts())
    assert "EAAG-wrong-token-XYZ" not in str(info.value)
    assert not list(settings.landing_dir.rglob("*.ndjson*"))


def test_missing_token_or_user_id(settings):
    with pytest.raises(TokenError, match="INSTAGRAM_ACCESS_TOKEN"):
        collect_month(accounts("gers"), MONTH,
                      Settings(**{**settings.__dict__, "access_token": None}))
    with pytest.raises(ValueError, match="INSTAGRAM_USER_ID"):
        collect_month(accounts("gers"), MONTH,
                      Settings(**{**settings.__dict__, "instagram_user_id": None}))


# --------------------------------------------------------------------------- throttling

def test_throttling_retried_then_ok_with_backoff(api, settings, sleeps):
    api.add_account("quiet", media=make_media(3))
    api.add_account("app4", media=make_media(3), throttle=2, throttle_code=4)
    api.add_account("cust613", media=make_media(3), throttle=1, throttle_code=613)
    api.add_account("bare429", media=make_media(3), throttle=2, throttle_code=None,
                    retry_after="7")
    api.add_account("buc", media=make_media(3), throttle=1, throttle_code=80002)
    res = collect_month(accounts("quiet", "app4", "cust613", "bare429", "buc"), MONTH, settings,
                        max_in_flight=1, options=opts(sleeps))
    assert (res.ok, res.error) == (5, 0)
    assert api.count("app4") == 3 and api.count("cust613") == 2
    assert api.count("bare429") == 3 and api.count("buc") == 2
    assert res.throttle_errors == 6 and res.throttled >= 6
    # Retry-After: 7 respected (twice); the others back off ≥ 15 s (30 s ± jitter) and grow
    assert sum(abs(s - 7) < 0.5 for s in sleeps.planned) == 2
    assert all(s >= 14 for s in sleeps.planned if abs(s - 7) >= 0.5)
    assert len(sleeps.planned) >= 6


def test_throttling_bounded_per_account(api, settings, sleeps):
    api.add_account("jammed", media=make_media(3), throttle=10_000, throttle_code=17)
    api.add_account("fine", media=make_media(3))
    res = collect_month(accounts("jammed", "fine"), MONTH, settings, max_in_flight=1,
                        options=opts(sleeps, throttle_budget_s=600))
    lines = by_handle(settings)
    assert lines["jammed"]["status"] == "error"
    assert lines["jammed"]["error"]["code"] == 17
    assert "budget" in lines["jammed"]["error"]["message"]
    assert lines["fine"]["status"] == "ok"
    assert 3 <= api.count("jammed") <= 12  # backed off, never hammered
    assert sum(sleeps.planned) <= 600 + 300 + 1  # bounded by the budget (+ the last pause)
    assert res.error == 1 and res.ok == 1


def test_usage_headers_slow_down_then_pause(api, settings, sleeps):
    handles = [f"u{i:02d}" for i in range(30)]
    for h in handles:
        api.add_account(h, media=make_media(2))
    # usage rises 50 → 99 %, hits 100 % once (regain in 2 min), then back to 60 %
    api.usage_schedule = [50, 70, 85, 90, 95, 99, 99, 100] + [60] * 100
    api.regain_minutes = 2
    # waits × 0.02 (not × 0.001): slowdowns of up to 100 ms between request starts, far
    # above the scheduling noise of a loaded machine; the 2 min pause lasts 2.4 s
    scale = 0.02
    res = collect_month(accounts(*handles), MONTH, settings, max_in_flight=4,
                        options=opts(sleeps, backoff_scale=scale))
    assert res.ok == 30 and res.error == 0
    assert res.usage_max_pct == 100
    assert res.usage_slowdowns > 0 and res.usage_pauses == 1
    assert res.throttled == res.usage_slowdowns + res.usage_pauses
    # the pause honours estimated_time_to_regain_access (2 min), slowdowns are shorter
    planned = [s * SCALE / scale for s in sleeps.planned]
    assert any(110 <= s <= 121 for s in planned)
    assert any(0 < s < 5.5 for s in planned)
    assert api.total_requests == 30  # no extra requests: waits, not retries


def test_app_usage_header_slows_down(api, settings, sleeps):
    for h in ("a1", "a2", "a3", "a4", "a5", "a6"):
        api.add_account(h, media=make_media(1))
    api.app_usage = 95
    # waits × 0.1 (not × 0.001): 375 ms between request starts, far above the scheduling
    # noise of a loaded machine, so the pacing is observed whatever the load
    scale = 0.1
    res = collect_month(accounts("a1", "a2", "a3", "a4", "a5", "a6"), MONTH, settings,
                        max_in_flight=3, options=opts(sleeps, backoff_scale=scale))
    assert res.ok == 6 and res.usage_max_pct == 95
    assert res.usage_slowdowns >= 2  # the first 3 requests went out before any header
    # at 95 %: 3.75 s between request starts (planned) across all workers
    paced = [s * SCALE / scale for s in sleeps.planned if s > 0]
    assert paced and max(paced) <= 3 * 3.75 + 0.5


# --------------------------------------------------------------------------- transient failures

def test_5xx_burst_then_ok(api, settings, sleeps):
    api.add_account("flaky", media=make_media(3), fail_5xx=3)
    api.add_account("steady", media=make_media(3))
    res = collect_month(accounts("flaky", "steady"), MONTH, settings, options=opts(sleeps))
    assert (res.ok, res.error) == (2, 0)
    assert api.count("flaky") == 4
    assert res.transient_retries == 3
    assert len(sleeps.planned) == 3 and all(0.9 <= s <= 8.1 for s in sleeps.planned)


@pytest.mark.parametrize("scenario, fragment", [
    ({"permanent_5xx": True}, "HTTP 503"),
    ({"garbage": True}, "not a JSON object"),
    ({"reset": True}, "Connection"),
])
def test_persistent_transient_failure_is_error_for_that_account_only(api, settings, scenario,
                                                                    fragment):
    api.add_account("broken", media=make_media(3), **scenario)
    api.add_account("good1", media=make_media(3))
    api.add_account("good2", media=make_media(3))
    res = collect_month(accounts("good1", "broken", "good2"), MONTH, settings, options=opts())
    assert (res.ok, res.error) == (2, 1)
    rec = by_handle(settings)["broken"]
    assert rec["status"] == "error" and rec["business_discovery"] is None
    assert fragment in rec["error"]["message"] and "5 attempts" in rec["error"]["message"]
    assert api.count("broken") == 5  # bounded retries


def test_timeouts_retried_then_error_and_slow_within_timeout_ok(api, settings):
    api.add_account("glacial", media=make_media(1), slow=0.6)
    api.add_account("sluggish", media=make_media(1), slow=0.1)
    res = collect_month(accounts("glacial", "sluggish"), MONTH, settings,
                        options=opts(read_timeout=0.3, max_attempts=2))
    lines = by_handle(settings)
    assert lines["sluggish"]["status"] == "ok"
    assert lines["glacial"]["status"] == "error"
    assert "timeout" in lines["glacial"]["error"]["message"]
    assert api.count("glacial") == 2 and res.error == 1


# --------------------------------------------------------------------------- resumability

def test_resume_skips_ok_accounts_and_retries_failed(api, settings):
    for h in ("alpha", "beta", "gamma", "delta"):
        api.add_account(h, media=make_media(3))
    api.scenario("gamma", permanent_5xx=True)
    # an earlier gz file (with a malformed line and a demo line) already has delta ok
    folder = settings.landing_dir / MONTH.strftime("%Y-%m")
    folder.mkdir(parents=True)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with gzip.open(folder / "import-old.ndjson.gz", "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({"handle": "delta", "fetched_at": now, "source": "import",
                             "status": "ok", "error": None, "business_discovery": {}}) + "\n")
        fh.write("{not json\n")
        fh.write(json.dumps({"handle": "beta", "fetched_at": now, "source": "demo",
                             "status": "ok", "error": None, "business_discovery": {}}) + "\n")
    first = collect_month(accounts("alpha", "beta", "gamma", "delta"), MONTH, settings,
                          options=opts())
    assert (first.ok, first.error, first.skipped) == (2, 1, 1)
    assert api.count("delta") == 0
    counts = dict(api.requests_by_handle)
    api.clear_scenario("gamma")  # the server recovered
    second = collect_month(accounts("alpha", "beta", "gamma", "delta"), MONTH, settings,
                           options=opts())
    assert (second.ok, second.error, second.skipped) == (1, 0, 3)
    assert second.requests == 1
    assert api.count("alpha") == counts["alpha"] and api.count("beta") == counts["beta"]
    assert api.count("gamma") == counts["gamma"] + 1
    # never rewrites: first run's file is untouched, the second run adds its own
    assert len(first.files) == 1 and len(second.files) == 1
    assert first.files[0] != second.files[0] and first.files[0].exists()
    third = collect_month(accounts("alpha", "beta", "gamma", "delta"), MONTH, settings,
                          options=opts())
    assert (third.requests, third.skipped, third.files) == (0, 4, [])


def test_only_current_month(settings):
    with pytest.raises(ValueError, match="today"):
        collect_month(accounts("gers"), add_months(MONTH, -1), settings)
    fixed = lambda: dt.datetime(2021, 7, 31, 22, 0, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="2021-07"):
        collect_month(accounts("gers"), dt.date(2021, 8, 1), settings, now=fixed)


# --------------------------------------------------------------------------- hygiene

def test_invalid_handle_never_sent(api, settings):
    api.add_account("gers", media=make_media(3))
    res = collect_month(accounts("gers", "bad)handle{", "haut savoie"), MONTH, settings,
                        options=opts())
    assert res.invalid_handles == ["bad)handle{", "haut savoie"]
    assert res.ok == 1 and res.error == 0
    assert set(api.requests_by_handle) == {"gers"}
    assert not any("bad" in p or "savoie" in p for p in api.raw_paths)
    assert set(by_handle(settings)) == {"gers"}


def test_token_never_leaks(api, settings, caplog):
    caplog.set_level(logging.DEBUG)
    api.add_account("ok1", media=make_media(3))
    api.add_account("echo", echo_token=True)
    api.add_account("reset", reset=True)
    api.add_account("junk", garbage=True)
    res = collect_month(accounts("ok1", "echo", "reset", "junk"), MONTH, settings,
                        options=opts())
    assert res.ok == 1 and res.error == 3
    echo = by_handle(settings)["echo"]
    assert "***" in echo["error"]["message"]
    assert TOKEN not in all_landing_text(settings)
    assert TOKEN not in caplog.text
    assert all(TOKEN not in str(r.args) for r in caplog.records)
    assert TOKEN not in repr(res) and TOKEN not in json.dumps(res.as_metadata())
    assert TOKEN not in repr(settings)
    # the token travels in the Authorization header only, never in the URL
    assert api.auth_headers == {f"Bearer {TOKEN}"}
    assert not any(TOKEN in p or "access_token" in p for p in api.raw_paths)


def test_max_concurrency_and_progress(api, settings):
    handles = [f"c{i:03d}" for i in range(40)]
    for h in handles:
        api.add_account(h, media=make_media(2))
    api.latency = 0.03
    events: list[dict] = []
    res = collect_month(accounts(*handles), MONTH, settings, max_in_flight=4, batch_size=15,
                        progress=events.append, options=opts())
    assert res.ok == 40
    assert 2 <= api.max_in_flight <= 4
    assert events[-1]["done"] == 40 and events[-1]["remaining"] == 0
    assert events[-1]["ok"] == 40 and events[-1]["failed"] == 0
    assert events[-1]["requests"] == 40
    assert {"done", "ok", "failed", "remaining", "requests"} <= set(events[0])
    assert [e["done"] for e in events] == sorted(e["done"] for e in events)


def test_batches_are_atomic_files(api, settings):
    handles = [f"b{i:02d}" for i in range(12)]
    for h in handles:
        api.add_account(h, media=make_media(1))
    res = collect_month(accounts(*handles), MONTH, settings, batch_size=5, options=opts())
    assert [len(read_text(p).splitlines()) for p in res.files] == [5, 5, 2]
    assert all(FILE_RE.match(p.name) for p in res.files)
    assert all(p.parent == settings.landing_dir / MONTH.strftime("%Y-%m") for p in res.files)
    assert len({p.name for p in res.files}) == 3
    assert no_temp_files(settings)
    assert sorted(r["handle"] for r in landing_lines(settings)) == handles
    meta = res.as_metadata()
    assert meta["files"] == 3 and meta["ok"] == 12 and meta["month"] == MONTH.strftime("%Y-%m")
    assert all(isinstance(v, (int, float, str)) for v in meta.values())
    assert isinstance(res, CollectionResult)


def test_fetched_at_is_time_of_first_request(api, settings):
    api.add_account("gers", media=make_media(300, per_day=4))
    stamps = iter([dt.datetime(2030, 1, 15, 8, 0, 0, tzinfo=dt.UTC),   # run start
                   dt.datetime(2030, 1, 15, 8, 0, 5, 123, tzinfo=dt.UTC)])  # 1st request
    last = dt.datetime(2030, 1, 15, 9, 0, 0, tzinfo=dt.UTC)
    res = collect_month(accounts("gers"), dt.date(2030, 1, 1), settings,
                        now=lambda: next(stamps, last), options=opts())
    rec = by_handle(settings)["gers"]
    assert rec["fetched_at"] == "2030-01-15T08:00:05Z"
    assert res.files[0].parent.name == "2030-01"
    # the fake's posts are dated "today"; relative to 2030-01-15 they are far in the past,
    # so the window stops paging after the first page
    assert api.count("gers") == 1
