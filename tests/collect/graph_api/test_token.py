"""Token health through Graph API `debug_token`, against the real-HTTP fake on 127.0.0.1:
validity, expiry, scopes, which token authorises the call, the alerts it feeds, `status`."""
from __future__ import annotations

import datetime as dt
import time
import urllib.parse

import pytest
from dagster import DagsterInstance
from fake_graph_api import FakeGraphAPI
from typer.testing import CliRunner

from dagster_project.cli.app import app
from dagster_project.collect.graph_api import check_token, token_problem, token_rows
from dagster_project.defs.automation import watch_once
from dagster_project.service import alerts
from dagster_project.settings import Settings

pytestmark = pytest.mark.timeout(60)

TOKEN = "EAAGhealth-T0KEN-s3cret-0123456789"
DAY = 86400


@pytest.fixture
def api(tmp_path):
    fake = FakeGraphAPI(token=TOKEN)
    now = int(time.time())
    fake.token_expires_at = now + 50 * DAY
    fake.token_data_access_expires_at = now + 80 * DAY
    with fake:
        yield fake


def settings_for(api: FakeGraphAPI, tmp_path, token: str = TOKEN) -> Settings:
    return Settings(data_dir=tmp_path / "data", dagster_home=tmp_path / "dagster",
                    accounts_file=tmp_path / "none.csv", graph_url=api.url,
                    instagram_user_id=api.user_id, access_token=token)


def inspected(api: FakeGraphAPI) -> list[str]:
    return [urllib.parse.parse_qs(urllib.parse.urlsplit(p).query).get("input_token", [""])[0]
            for p in api.raw_paths if "/debug_token" in p]


def test_a_valid_token_checked_with_itself(api, tmp_path, monkeypatch):
    for name in ("INSTAGRAM_APP_TOKEN", "INSTAGRAM_APP_ID", "INSTAGRAM_APP_SECRET"):
        monkeypatch.delenv(name, raising=False)
    health = check_token(settings_for(api, tmp_path))
    now = dt.datetime.now(dt.UTC)
    assert health.state == "valid" and health.checked_with == "the token itself"
    assert health.token_type == "USER" and not health.never_expires
    assert 49 <= (health.expires_at - now).days <= 50
    assert 79 <= (health.data_access_expires_at - now).days <= 80
    assert health.missing_scopes == () and "instagram_basic" in health.scopes
    assert token_problem(health, now) is None
    assert api.auth_headers == {f"Bearer {TOKEN}"} and inspected(api) == [TOKEN]


def test_an_app_token_authorises_the_check(api, tmp_path, monkeypatch):
    api.app_token = "1234567890|app-s3cret"
    monkeypatch.setenv("INSTAGRAM_APP_ID", "1234567890")
    monkeypatch.setenv("INSTAGRAM_APP_SECRET", "app-s3cret")
    monkeypatch.delenv("INSTAGRAM_APP_TOKEN", raising=False)
    health = check_token(settings_for(api, tmp_path))
    assert health.state == "valid" and health.checked_with == "app token"
    assert api.auth_headers == {"Bearer 1234567890|app-s3cret"}
    # an app token Meta refuses: the check is unknown, not a verdict on the user token
    api.app_token = "someone-else"
    refused = check_token(settings_for(api, tmp_path))
    assert refused.state == "unknown" and "debug_token refused (app token)" in refused.detail
    assert token_problem(refused, dt.datetime.now(dt.UTC)) is None
    assert "app-s3cret" not in refused.detail


def test_expiring_within_seven_days_alerts_once_per_expiry_date(api, tmp_path):
    now = dt.datetime.now(dt.UTC)
    api.token_expires_at = int(now.timestamp()) + 3 * DAY + 3600
    health = check_token(settings_for(api, tmp_path))
    event, key, text = token_problem(health, now)
    expiry = dt.datetime.fromtimestamp(api.token_expires_at, dt.UTC)
    assert (event, key) == ("token_expiring", f"expires:{expiry.date().isoformat()}")
    assert text == (f"Observatoire: the Instagram token expires on {expiry:%Y-%m-%d %H:%M} UTC "
                    "(in 3 day(s)): renew it before then")
    # 8 days before: nothing yet; data access ending first is what is told
    assert token_problem(health, now - dt.timedelta(days=5)) is None
    api.token_expires_at = 0
    api.token_data_access_expires_at = int(now.timestamp()) + 2 * DAY
    data_end = check_token(settings_for(api, tmp_path))
    assert data_end.never_expires and data_end.expires_at is None
    assert token_problem(data_end, now)[1].startswith("data access ends:")


def test_invalid_tokens_and_missing_scopes(api, tmp_path, monkeypatch):
    for name in ("INSTAGRAM_APP_TOKEN", "INSTAGRAM_APP_ID", "INSTAGRAM_APP_SECRET"):
        monkeypatch.delenv(name, raising=False)
    now = dt.datetime.now(dt.UTC)
    # expired: Meta answers is_valid false with its error
    api.token_expires_at = int(now.timestamp()) - 60
    expired = check_token(settings_for(api, tmp_path))
    assert expired.state == "invalid" and "Session has expired" in expired.detail
    assert token_problem(expired, now)[:2] == ("token_invalid", "invalid")
    # a token the API does not know, checking itself: code 190 on the call itself
    api.token_expires_at = 0
    wrong = check_token(settings_for(api, tmp_path, token="EAAGwrong-token-987654"))
    assert wrong.state == "invalid" and "wrong-token" not in wrong.detail
    # valid but without a permission business_discovery needs
    api.token_scopes = ["instagram_basic", "pages_show_list"]
    narrow = check_token(settings_for(api, tmp_path))
    assert narrow.missing_scopes == ("instagram_manage_insights", "pages_read_engagement")
    event, key, text = token_problem(narrow, now)
    assert (event, key) == ("token_invalid",
                            "scopes:instagram_manage_insights, pages_read_engagement")
    assert "lacks the permission(s) instagram_manage_insights" in text


def test_an_unreachable_api_is_unknown_and_the_token_stays_secret(tmp_path):
    api = FakeGraphAPI(token=TOKEN).start()
    settings = settings_for(api, tmp_path)
    api.stop()  # nothing listens there any more
    health = check_token(settings, timeout_s=2)
    assert health.state == "unknown" and "could not be read" in health.detail
    assert TOKEN not in health.detail and "input_token=***" in health.detail
    assert token_problem(health, dt.datetime.now(dt.UTC)) is None
    missing = check_token(Settings(**{**settings.__dict__, "access_token": None}))
    assert missing.state == "missing"
    assert token_rows(missing, dt.datetime.now(dt.UTC))[0][1].startswith("not set")


def test_status_shows_the_token(api, tmp_path, monkeypatch):
    registry = tmp_path / "accounts.csv"
    registry.write_text("handle,territory_id,source_url,checked_on\n", encoding="utf-8")
    api.token_scopes = ["instagram_basic", "pages_read_engagement"]
    env = {"COLUMNS": "220", "INSTAGRAM_ACCESS_TOKEN": TOKEN, "INSTAGRAM_GRAPH_URL": api.url,
           "INSTAGRAM_USER_ID": api.user_id, "OBSERVATOIRE_DATA_DIR": str(tmp_path / "data")}
    for name in ("INSTAGRAM_APP_TOKEN", "INSTAGRAM_APP_ID", "INSTAGRAM_APP_SECRET"):
        monkeypatch.delenv(name, raising=False)
    res = CliRunner().invoke(app, ["status", "--accounts", str(registry)], env=env)
    assert res.exit_code == 0, res.output
    expiry = dt.datetime.fromtimestamp(api.token_expires_at, dt.UTC)
    assert "valid (USER), checked with the token itself" in res.output
    assert f"{expiry:%Y-%m-%d %H:%M} UTC" in res.output
    assert "missing: instagram_manage_insights" in res.output
    assert TOKEN not in res.output


def test_the_watch_checks_the_token_once_a_day(api, tmp_path, monkeypatch):
    now = dt.datetime.now(dt.UTC)
    api.token_expires_at = int(now.timestamp()) + 2 * DAY
    monkeypatch.setenv("OBSERVATOIRE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OBSERVATOIRE_ACCOUNTS", str(tmp_path / "no-registry.csv"))
    monkeypatch.setenv("INSTAGRAM_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("INSTAGRAM_GRAPH_URL", api.url)
    for name in ("WEBHOOK_URL", "SMTP_HOST"):
        monkeypatch.delenv(f"OBSERVATOIRE_ALERT_{name}", raising=False)
    with DagsterInstance.ephemeral() as instance:
        done, cursor = watch_once(instance, now, {})
        assert "token_expiring" in done and cursor["token_checked"] == now.date().isoformat()
        calls = len(inspected(api))
        again, _ = watch_once(instance, now + dt.timedelta(minutes=5), cursor)
        assert "token_expiring" not in again and len(inspected(api)) == calls  # once a day
        tomorrow, _ = watch_once(instance, now + dt.timedelta(days=1), cursor)
        assert "token_expiring" not in tomorrow  # checked again, same expiry: not re-sent
        assert len(inspected(api)) == calls + 1
    sent = [a for a in alerts.recent(tmp_path / "data") if a["event"] == "token_expiring"]
    assert len(sent) == 1 and TOKEN not in sent[0]["text"]
