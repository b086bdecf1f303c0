"""A collection night where most accounts fail is alerted that night (`collection_failing`).

Through the real collection (`collect_today`) against the Graph API stand-in on 127.0.0.1,
with a real webhook receiver on 127.0.0.1.
"""
from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest
from fake_graph_api import FakeGraphAPI, make_media
from webhook_receiver import WebhookReceiver

from dagster_project.collect.graph_api import CollectorOptions, TokenError
from dagster_project.collect.graph_api.month import CollectionResult, error_label
from dagster_project.collect.night import (
    alert_failing_night,
    failing_night_alert,
    night_failure,
    night_key,
)
from dagster_project.collect.plan import PlanSettings
from dagster_project.collect.window import collect_today
from dagster_project.registry.accounts import Account
from dagster_project.service.alerts import recent
from dagster_project.settings import Settings

pytestmark = pytest.mark.timeout(60)

TOKEN = "EAAGnight-F41L1NG-token-0123456789"
NIGHT = dt.datetime(2026, 3, 30, 0, 30, tzinfo=dt.UTC)
PLAN = PlanSettings(window_days=3, calls_per_hour=3600, run_hours=20, stop_usage_pct=90)
OPTIONS = CollectorOptions(backoff_scale=0.001)
PERMISSION = "(#10) Application does not have permission for this action"


def result(ok=0, error=0, not_found=0, not_business=0, errors=None, **kw) -> CollectionResult:
    return CollectionResult(month=dt.date(2026, 12, 1), ok=ok, not_found=not_found,
                            not_business=not_business, error=error, skipped=0, requests=0,
                            throttled=0, files=[], invalid_handles=[], elapsed_s=1.0,
                            errors=Counter(errors or {}), **kw)


TOKEN_190 = "code 190: Error validating access token"


# --- the decision ---------------------------------------------------------------------------

def test_every_account_failed_is_a_failing_night():
    assert night_failure(result(error=50, errors={TOKEN_190: 45, "code 100: x": 5})) == (
        50, 50, TOKEN_190, 45)


def test_more_than_half_is_a_failing_night_half_is_not():
    assert night_failure(result(ok=24, error=26, errors={"code 10: no": 26})) == (
        26, 50, "code 10: no", 26)
    assert night_failure(result(ok=25, error=25, errors={"code 10: no": 25})) is None
    assert night_failure(result(ok=50)) is None


def test_answers_are_not_failures_and_left_accounts_not_attempted():
    # not_found / not_business are answers: 25 errors of 50 attempted is not "more than half"
    assert night_failure(result(not_found=20, not_business=5, error=25,
                                errors={"code 1: e": 25})) is None
    # accounts left for the next run (throttling hold, budget) are not attempted: 3 of 4
    assert night_failure(result(ok=1, error=3, errors={"code 2: e": 3}, remaining=96,
                                stopped_reason="usage")) == (3, 4, "code 2: e", 3)


def test_nothing_attempted_is_no_failing_night():
    assert night_failure(result()) is None
    assert night_failure(result(remaining=50, stopped_reason="usage")) is None


def test_commonest_error_by_count_ties_to_the_first_seen():
    errors = Counter()
    for e in ["code 100: b", "code 10: a", "code 10: a", "code 100: b", "code 2: c"]:
        errors[e] += 1
    assert night_failure(result(error=5, errors=errors))[2:] == ("code 100: b", 2)
    errors = Counter({"code 2: c": 1, "code 10: a": 3, "code 100: b": 1})
    assert night_failure(result(error=5, errors=errors))[2:] == ("code 10: a", 3)
    # counts without the per-error breakdown still alert
    assert night_failure(result(error=3))[2:] == ("unknown error", 3)


def test_error_label_names_code_subcode_and_message():
    assert error_label({"code": 10, "subcode": None, "message": "(#10) no\n permission"}) == (
        "code 10: (#10) no permission")
    assert error_label({"code": 100, "subcode": 33, "message": "Unsupported get"}) == (
        "code 100, subcode 33: Unsupported get")
    assert error_label({"code": None, "subcode": None, "message": "timeout"}) == "timeout"
    assert error_label(None) == "unknown error"


def test_the_alert_text_key_and_detail():
    r = result(ok=2, error=48, errors={"code 100: Invalid parameter": 3, TOKEN_190: 45})
    alert = failing_night_alert(r, night_failure(r), collection_run="abc123")
    assert alert.event == "collection_failing" and alert.month == "2026-12"
    assert alert.text == ("Observatoire: the 2026-12 collection failed for 48 of 50 accounts "
                          f"tonight; commonest error (45×): {TOKEN_190}")
    assert "45× code 190" in alert.detail and "3× code 100" in alert.detail
    assert "abc123" in alert.detail
    # one key a night: the run's UTC date
    late = dt.datetime(2026, 12, 28, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert night_key(late) == "collection_failing:2026-12-27"


def test_the_alert_never_fails_the_run(tmp_path, caplog):
    # an outbox that cannot be created (a file where its folder should be): logged, no raise
    (tmp_path / "alerts").write_text("not a folder")
    assert alert_failing_night(tmp_path, result(error=3, errors={"code 1: e": 3}),
                               dt.datetime(2026, 12, 28, tzinfo=dt.UTC)) is False
    assert alert_failing_night(tmp_path, object(), dt.datetime(2026, 12, 28, tzinfo=dt.UTC)) \
        is False
    assert "not sent" in caplog.text or "not recorded" in caplog.text


# --- through the collection -----------------------------------------------------------------

@pytest.fixture
def receiver(monkeypatch):
    r = WebhookReceiver("/hooks/s3cr3t")
    for name in ("SMTP_HOST", "SMTP_TO", "SMTP_FROM", "SMTP_USER", "SMTP_PASSWORD"):
        monkeypatch.delenv(f"OBSERVATOIRE_ALERT_{name}", raising=False)
    monkeypatch.setenv("OBSERVATOIRE_ALERT_WEBHOOK_URL", r.url)
    monkeypatch.setenv("INSTAGRAM_ACCESS_TOKEN", TOKEN)
    yield r
    r.close()


def stand_in(tmp_path, api: FakeGraphAPI, handles: list[str]):
    accounts = [Account(h, f"departement:{i + 1:02d}") for i, h in enumerate(handles)]
    settings = Settings(data_dir=tmp_path / "data", dagster_home=tmp_path / "dagster",
                        accounts_file=tmp_path / "accounts.csv", graph_url=api.url,
                        instagram_user_id=api.user_id, access_token=TOKEN)
    return accounts, settings


def night(accounts, settings, when: dt.datetime):
    return collect_today(accounts, settings, plan_settings=PLAN, options=OPTIONS,
                         now=lambda: when, max_in_flight=4)


def test_a_failing_night_is_alerted_once_that_night(tmp_path, receiver):
    api = FakeGraphAPI(token=TOKEN)
    # 5 accounts refused for a permission, 1 with a generic error echoing the token,
    # 1 unknown (an answer, not a failure), 1 fine: 6 of 8 failed
    refused = [f"refus{i}" for i in range(5)]
    for h in refused:
        api.add_account(h, graph_error=(403, 10, PERMISSION))
    api.add_account("bavarde", echo_token=True)
    api.add_account("disparue", not_found=True)
    api.add_account("vivante", media=make_media(2, newest=NIGHT))
    with api:
        accounts, settings = stand_in(tmp_path, api,
                                      [*refused, "bavarde", "disparue", "vivante"])
        first = night(accounts, settings, NIGHT)
        assert (first.result.error, first.result.collected) == (6, 8)

        assert len(receiver.bodies) == 1, receiver.bodies
        [body] = receiver.bodies
        assert body["event"] == "collection_failing" and body["month"] == "2026-03"
        assert "the 2026-03 collection failed for 6 of 8 accounts tonight" in body["text"]
        assert f"commonest error (5×): code 10: {PERMISSION}" in body["text"]
        assert TOKEN not in json.dumps(receiver.bodies)

        # a second run the same night fails again (error accounts are retried): no new alert
        second = night(accounts, settings, NIGHT + dt.timedelta(hours=2))
        assert second.result.error == 6
        assert len(receiver.bodies) == 1

        # the next night still failing: alerted again, once
        night(accounts, settings, NIGHT + dt.timedelta(days=1))
        assert len(receiver.bodies) == 2
        assert receiver.bodies[1]["event"] == "collection_failing"


def test_a_healthy_night_sends_nothing(tmp_path, receiver):
    api = FakeGraphAPI(token=TOKEN)
    for h in ("vivante", "active"):
        api.add_account(h, media=make_media(2, newest=NIGHT))
    api.add_account("refus", graph_error=(403, 10, PERMISSION))   # 1 of 3: not a failing night
    with api:
        accounts, settings = stand_in(tmp_path, api, ["vivante", "active", "refus"])
        assert night(accounts, settings, NIGHT).result.error == 1
    assert receiver.bodies == [] and recent(settings.data_dir) == []


def test_a_rejected_token_is_alerted_as_the_failed_run_not_twice(tmp_path, receiver):
    """Code 190 stops the run at its first answer (TokenError): no per-account accounting,
    and the run fails. Its alert is the run failure's (`run_failed`, naming code 190, from
    the run-failure sensor that runs with the nightly schedule under `serve`):
    `collection_failing` is not recorded as a second message for the same night."""
    api = FakeGraphAPI(token=TOKEN)
    handles = [f"ville{i}" for i in range(6)]
    for h in handles:
        api.add_account(h, token_error=True)
    with api:
        accounts, settings = stand_in(tmp_path, api, handles)
        with pytest.raises(TokenError, match="code 190"):
            night(accounts, settings, NIGHT)
    assert receiver.bodies == [] and recent(settings.data_dir) == []
