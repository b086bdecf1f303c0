"""The alert outbox against real servers on 127.0.0.1: a webhook receiver (http.server)
and an SMTP sink (aiosmtpd). No mock of requests or smtplib."""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import logging
import re
import socket
import sqlite3
import threading
from contextlib import closing

import pytest
from aiosmtpd.controller import Controller
from webhook_receiver import WebhookReceiver

from dagster_project.service.alerts import (
    Alert,
    AlertSettings,
    Delivery,
    deliver_pending,
    email_message,
    load_alert_settings,
    notify,
    outbox_path,
    recent,
    record,
)

SECRET_PATH = "/hooks/T000/B000/s3cr3tW3bh00kP4th"
T0 = dt.datetime(2026, 11, 3, 10, 0, tzinfo=dt.UTC)
ALERT = Alert(event="run_failed", text="Run abc failed at step collect.", month="2026-10",
              run_id="abc-123", detail="step collect: HTTPError 400")


class Sink:
    """An SMTP sink: keeps the messages it accepts; answers `refuse[marker]` (e.g. "550 …")
    to DATA of a message containing `marker`, and "451 …" to the first `fail_first`."""

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.attempts.append(message)
        if len(self.attempts) <= self.fail_first:
            return "451 4.3.0 try again later"
        text = envelope.content.decode("utf-8", "replace")
        for marker, reply in self.refuse.items():
            if marker in text:
                return reply
        self.messages.append(message)
        return "250 OK"

    def __init__(self) -> None:
        self.messages: list = []            # accepted
        self.attempts: list = []            # every DATA received
        self.refuse: dict[str, str] = {}
        self.fail_first = 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def receiver():
    r = WebhookReceiver(SECRET_PATH)
    yield r
    r.close()


@pytest.fixture
def smtp():
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield sink, controller.port
    controller.stop()


def email_settings(port: int, **kw) -> AlertSettings:
    return AlertSettings(smtp_host="127.0.0.1", smtp_port=port, smtp_from="obs@example.org",
                         smtp_to=("ops@example.org",), smtp_security="none", timeout_s=5, **kw)


def test_one_post_per_key_with_its_fields(tmp_path, receiver):
    settings = AlertSettings(webhook_url=receiver.url, timeout_s=5)
    results = []
    for _ in range(3):
        results.append(record(tmp_path, "run_failed:abc-123", ALERT))
        deliver_pending(tmp_path, settings)
    assert results == [True, False, False]
    assert len(receiver.bodies) == 1
    assert receiver.bodies[0] == {
        "text": "Run abc failed at step collect. — step collect: HTTPError 400",
        "event": "run_failed", "month": "2026-10", "run_id": "abc-123",
        "detail": "step collect: HTTPError 400", "id": "run_failed:abc-123"}
    [row] = recent(tmp_path)
    assert row["key"] == "run_failed:abc-123" and row["channels"]["webhook"]["state"] == "sent"


def test_500_then_200_is_retried_and_sent_once(tmp_path, receiver, caplog):
    receiver.fail_first = 1
    settings = AlertSettings(webhook_url=receiver.url, timeout_s=5)
    assert notify(tmp_path, "not_published:2026-10", ALERT, settings) is True
    assert deliver_pending(tmp_path, settings) == Delivery(sent=1, failed=0, pending=0)
    assert deliver_pending(tmp_path, settings) == Delivery(sent=0, failed=0, pending=0)
    assert len(receiver.bodies) == 2 and len(receiver.accepted) == 1
    state = recent(tmp_path)[0]["channels"]["webhook"]
    assert state["attempts"] == 2 and state["last_error"].startswith("HTTP 500")
    assert "HTTP 500" in caplog.text and SECRET_PATH not in caplog.text


def test_first_delivery_reports_failed_and_pending(tmp_path, receiver):
    receiver.fail_first = 1
    settings = AlertSettings(webhook_url=receiver.url, timeout_s=5)
    record(tmp_path, "k", ALERT)
    assert deliver_pending(tmp_path, settings) == Delivery(sent=0, failed=1, pending=1)
    assert deliver_pending(tmp_path, settings) == Delivery(sent=1, failed=0, pending=0)
    assert len(receiver.accepted) == 1


def test_receiver_down_does_not_raise(tmp_path, caplog):
    port = free_port()
    settings = AlertSettings(webhook_url=f"http://127.0.0.1:{port}{SECRET_PATH}", timeout_s=2)
    record(tmp_path, "k", ALERT)
    with caplog.at_level(logging.WARNING, logger="dagster_project.service.alerts"):
        assert deliver_pending(tmp_path, settings) == Delivery(sent=0, failed=1, pending=1)
    assert f"http://127.0.0.1:{port}" in caplog.text
    state = recent(tmp_path)[0]["channels"]["webhook"]
    assert state["state"] == "pending" and state["attempts"] == 1
    assert "ConnectionError" in state["last_error"]
    assert "s3cr3t" not in caplog.text + state["last_error"]


def test_email_delivered_once_with_subject(tmp_path, smtp):
    sink, port = smtp
    settings = email_settings(port)
    for _ in range(3):
        notify(tmp_path, "run_failed:abc-123", ALERT, settings)
    [message] = sink.messages
    assert message["Subject"] == "[Observatoire] run_failed 2026-10: Run abc failed at step collect."
    assert message["To"] == "ops@example.org"
    body = message.get_content()
    assert "run_id: abc-123" in body and "step collect: HTTPError 400" in body


def test_email_sent_once_while_the_webhook_is_retried(tmp_path, receiver, smtp):
    sink, port = smtp
    receiver.fail_first = 2
    settings = email_settings(port, webhook_url=receiver.url)
    assert settings.channels == ("webhook", "email")
    record(tmp_path, "k", ALERT)
    assert deliver_pending(tmp_path, settings) == Delivery(sent=1, failed=1, pending=1)
    assert deliver_pending(tmp_path, settings) == Delivery(sent=0, failed=1, pending=1)
    assert deliver_pending(tmp_path, settings) == Delivery(sent=1, failed=0, pending=0)
    assert len(sink.messages) == 1 and len(receiver.accepted) == 1
    assert {c: s["state"] for c, s in recent(tmp_path)[0]["channels"].items()} == {
        "email": "sent", "webhook": "sent"}


def test_secrets_are_scrubbed(tmp_path, receiver, monkeypatch):
    token = "EAAGtok3nV4lueXYZ0123456789"
    monkeypatch.setenv("INSTAGRAM_ACCESS_TOKEN", token)
    alert = Alert(event="token_invalid", text=f"Token {token} refused.",
                  detail=(f"GET https://graph.facebook.com/v23.0/me?fields=id&access_token=other"
                          f"Tok42&x=1 failed; Authorization: Bearer abcDEF123.456 ; {token}"))
    record(tmp_path, "token_invalid:2026-11-03", alert)
    deliver_pending(tmp_path, AlertSettings(webhook_url=receiver.url, timeout_s=5))
    posted = json.dumps(receiver.bodies)
    stored = b"".join(p.read_bytes() for p in outbox_path(tmp_path).parent.iterdir())
    for leak in (token, "otherTok42", "abcDEF123"):
        assert leak not in posted
        assert leak.encode() not in stored
    assert "access_token=***&x=1" in posted and "Bearer ***" in posted


def test_detail_is_capped(tmp_path, receiver):
    record(tmp_path, "k", Alert(event="verify_failed", text="Archive problems.",
                                detail="x" * 10_000))
    deliver_pending(tmp_path, AlertSettings(webhook_url=receiver.url, timeout_s=5))
    [body] = receiver.bodies
    assert len(body["detail"]) <= 3000 and len(body["text"]) <= 3500


def test_two_concurrent_deliveries_send_once(tmp_path, receiver):
    receiver.delay_s = 0.3
    settings = AlertSettings(webhook_url=receiver.url, timeout_s=5)
    record(tmp_path, "k", ALERT)
    barrier = threading.Barrier(2)
    results = []

    def deliver() -> None:
        barrier.wait()
        results.append(deliver_pending(tmp_path, settings))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(receiver.bodies) == 1
    assert sorted(r.sent for r in results) == [0, 1]


def three_alerts(data_dir, marker: str = "", first_minute: int = 0) -> list[str]:
    """Record alerts k1, k2, k3 one minute apart (k2's text contains `marker`): their texts."""
    texts = [f"Run {n} failed{' ' + marker if n == 2 else ''}." for n in (1, 2, 3)]
    for n, text in enumerate(texts, 1):
        record(data_dir, f"k{n}", Alert(event="run_failed", text=text),
               now=T0 + dt.timedelta(minutes=first_minute + n))
    return texts


def test_400_fails_that_message_and_the_rest_are_sent(tmp_path, receiver, monkeypatch):
    """A message the webhook refuses (4xx) is marked failed, not retried, listed by
    `observatoire alert`; the channel keeps delivering the messages after it. 429 and the
    channel's own refusals (404: URL unknown) keep it pending, retried next call."""
    from typer.testing import CliRunner

    from dagster_project.cli.app import app

    data_dir = tmp_path / "data"
    receiver.refuse = {"BAD": 400}
    settings = AlertSettings(webhook_url=receiver.url, timeout_s=5)
    texts = three_alerts(data_dir, "BAD")
    now = T0 + dt.timedelta(minutes=5)
    done = deliver_pending(data_dir, settings, now=now)
    assert [b["text"] for b in receiver.accepted] == [texts[0], texts[2]]
    state = {r["key"]: r["channels"]["webhook"] for r in recent(data_dir)}
    assert {k: s["state"] for k, s in state.items()} == {
        "k1": "sent", "k2": "failed", "k3": "sent"}
    assert state["k2"]["last_error"] == "HTTP 400: invalid_payload"
    assert done == Delivery(sent=2, failed=1, pending=0, refused=1)
    assert deliver_pending(data_dir, settings, now=now) == Delivery(0, 0, 0)
    assert len(receiver.bodies) == 3                        # the refused one is not retried

    for name in ("OBSERVATOIRE_ALERT_WEBHOOK_URL", "OBSERVATOIRE_ALERT_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    listed = CliRunner().invoke(app, ["alert", "--data-dir", str(data_dir)],
                                env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    shown = " ".join(listed.output.split())     # the console wraps at the terminal's width
    assert "Run 2 failed BAD. — webhook failed (HTTP 400: invalid_payload)" in shown

    receiver.refuse = {"SLOW": 429}
    record(data_dir, "k4", Alert(event="run_failed", text="Run 4 failed SLOW."), now=now)
    assert deliver_pending(data_dir, settings, now=now) == Delivery(
        sent=0, failed=1, pending=1, refused=0)
    receiver.refuse = {"SLOW": 404}
    assert deliver_pending(data_dir, settings, now=now).pending == 1
    k4 = recent(data_dir)[0]["channels"]["webhook"]
    assert (k4["state"], k4["attempts"], k4["last_error"]) == (
        "pending", 2, "HTTP 404: invalid_payload")


def test_one_message_claimed_at_a_time(tmp_path, receiver):
    """While a message is being sent, the later ones are still 'pending', not claimed."""
    settings = AlertSettings(webhook_url=receiver.url, timeout_s=5)
    three_alerts(tmp_path)
    seen = []

    def look(body) -> None:
        with closing(sqlite3.connect(outbox_path(tmp_path))) as conn:
            seen.append(dict(conn.execute("SELECT key, state FROM deliveries").fetchall()))

    receiver.on_post = look
    assert deliver_pending(tmp_path, settings, now=T0 + dt.timedelta(minutes=5)).sent == 3
    assert seen == [{"k1": "sending", "k2": "pending", "k3": "pending"},
                    {"k1": "sent", "k2": "sending", "k3": "pending"},
                    {"k1": "sent", "k2": "sent", "k3": "sending"}]


def test_two_concurrent_deliveries_share_the_messages(tmp_path, receiver):
    """The first POST is held until a second one arrives: a concurrent call sends the next
    message meanwhile; each message is still sent once."""
    settings = AlertSettings(webhook_url=receiver.url, timeout_s=5)
    texts = three_alerts(tmp_path)
    second_post = threading.Event()
    posts = []

    def hold(body) -> None:
        with receiver.lock:
            posts.append(body)
            first = len(posts) == 1
        if first:
            second_post.wait(3)
        else:
            second_post.set()

    receiver.on_post = hold
    barrier = threading.Barrier(2)
    results = []

    def deliver() -> None:
        barrier.wait()
        results.append(deliver_pending(tmp_path, settings, now=T0 + dt.timedelta(minutes=5)))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(b["text"] for b in receiver.bodies) == texts
    assert sorted(r.sent for r in results) == [1, 2]


def test_ids_for_deduplication(tmp_path, receiver, smtp):
    """At least once: a retried alert carries the same `id` (webhook) and Message-ID
    (e-mail), derived from its key, so a receiver can drop a repeat."""
    sink, port = smtp
    receiver.fail_first, sink.fail_first = 1, 1              # HTTP 500, then SMTP 451
    settings = email_settings(port, webhook_url=receiver.url)
    record(tmp_path, "run_failed:abc-123", ALERT)
    assert deliver_pending(tmp_path, settings) == Delivery(sent=0, failed=2, pending=2)
    assert deliver_pending(tmp_path, settings) == Delivery(sent=2, failed=0, pending=0)
    assert [b.get("id") for b in receiver.bodies] == ["run_failed:abc-123"] * 2
    with closing(sqlite3.connect(outbox_path(tmp_path))) as conn:
        conn.row_factory = sqlite3.Row
        row = dict(conn.execute("SELECT * FROM alerts").fetchone())
    message_id = email_message(row, settings)["Message-ID"]
    assert message_id and re.fullmatch(r"<[0-9a-f]{32}@observatoire>", message_id)
    assert [m["Message-ID"] for m in sink.attempts] == [message_id, message_id]
    assert email_message(row, settings)["Message-ID"] == message_id
    assert email_message({**row, "key": "run_failed:other"}, settings)["Message-ID"] != message_id


def test_smtp_5xx_fails_that_message_and_the_next_is_sent(tmp_path, smtp):
    """A message the SMTP server refuses for good (550 at DATA) is marked failed; the next
    one is delivered in the same call; a 451 keeps the channel pending."""
    sink, port = smtp
    sink.refuse = {"BAD": "550 5.7.1 content refused"}
    settings = email_settings(port)
    texts = three_alerts(tmp_path, "BAD")
    now = T0 + dt.timedelta(minutes=5)
    done = deliver_pending(tmp_path, settings, now=now)
    assert [m.get_content().splitlines()[0] for m in sink.messages] == [texts[0], texts[2]]
    state = {r["key"]: r["channels"]["email"] for r in recent(tmp_path)}
    assert {k: s["state"] for k, s in state.items()} == {
        "k1": "sent", "k2": "failed", "k3": "sent"}
    assert state["k2"]["last_error"] == "SMTP 550: 5.7.1 content refused"
    assert done == Delivery(sent=2, failed=1, pending=0, refused=1)
    assert deliver_pending(tmp_path, settings, now=now) == Delivery(0, 0, 0)
    assert len(sink.attempts) == 3

    sink.refuse = {"LATER": "451 4.7.1 greylisted"}
    record(tmp_path, "k4", Alert(event="run_failed", text="Run 4 failed LATER."), now=now)
    assert deliver_pending(tmp_path, settings, now=now) == Delivery(
        sent=0, failed=1, pending=1, refused=0)
    k4 = recent(tmp_path)[0]["channels"]["email"]
    assert (k4["state"], k4["last_error"]) == ("pending", "SMTP 451: 4.7.1 greylisted")


def test_claim_older_than_10_minutes_is_free_again(tmp_path, receiver):
    settings = AlertSettings(webhook_url=receiver.url, timeout_s=5)
    record(tmp_path, "k", ALERT, now=T0)
    with sqlite3.connect(outbox_path(tmp_path)) as conn:  # a process died while sending
        conn.execute("INSERT INTO deliveries (key, channel, state, claimed_at)"
                     " VALUES ('k', 'webhook', 'sending', '2026-11-03T10:00:00Z')")
    assert deliver_pending(tmp_path, settings, now=T0 + dt.timedelta(minutes=5)).sent == 0
    assert deliver_pending(tmp_path, settings, now=T0 + dt.timedelta(minutes=11)).sent == 1
    assert len(receiver.bodies) == 1


def test_given_up_after_72_hours(tmp_path, receiver, caplog):
    receiver.fail_first = 100
    settings = AlertSettings(webhook_url=receiver.url, timeout_s=5)
    record(tmp_path, "k", ALERT, now=T0)
    assert deliver_pending(tmp_path, settings, now=T0 + dt.timedelta(hours=71)).failed == 1
    with caplog.at_level(logging.ERROR, logger="dagster_project.service.alerts"):
        assert deliver_pending(tmp_path, settings, now=T0 + dt.timedelta(hours=73)) == Delivery(
            sent=0, failed=0, pending=0)
    assert "given up" in caplog.text
    assert len(receiver.bodies) == 1
    assert recent(tmp_path)[0]["channels"]["webhook"]["state"] == "abandoned"


def test_no_channel_keeps_alerts_pending_and_warns_once(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="dagster_project.service.alerts"):
        for _ in range(3):
            assert notify(tmp_path, "k", ALERT, AlertSettings()) in (True, False)
    assert caplog.text.count("no alert channel configured: Run abc failed") == 1
    assert deliver_pending(tmp_path, AlertSettings()) == Delivery(sent=0, failed=0, pending=1)


def test_never_raises(tmp_path, monkeypatch, caplog):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    assert notify(not_a_dir, "k", ALERT, AlertSettings()) is False
    monkeypatch.setenv("OBSERVATOIRE_ALERT_SMTP_PORT", "abc")
    assert deliver_pending(tmp_path) == Delivery(0, 0, 0)
    assert "OBSERVATOIRE_ALERT_SMTP_PORT" in caplog.text


@pytest.mark.parametrize(("env", "variable"), [
    ({"OBSERVATOIRE_ALERT_SMTP_PORT": "25x"}, "OBSERVATOIRE_ALERT_SMTP_PORT"),
    ({"OBSERVATOIRE_ALERT_SMTP_SECURITY": "tls"}, "OBSERVATOIRE_ALERT_SMTP_SECURITY"),
    ({"OBSERVATOIRE_ALERT_SMTP_HOST": "mx", "OBSERVATOIRE_ALERT_SMTP_FROM": "a@b"},
     "OBSERVATOIRE_ALERT_SMTP_TO"),
    ({"OBSERVATOIRE_ALERT_SMTP_HOST": "mx", "OBSERVATOIRE_ALERT_SMTP_TO": "a@b"},
     "OBSERVATOIRE_ALERT_SMTP_FROM"),
    ({"OBSERVATOIRE_ALERT_WEBHOOK_URL": "hooks.slack.com/x"}, "OBSERVATOIRE_ALERT_WEBHOOK_URL"),
])
def test_bad_settings_name_the_variable(env, variable):
    with pytest.raises(ValueError, match=variable):
        load_alert_settings(env)


def test_settings_from_environment():
    assert load_alert_settings({}).channels == ()
    settings = load_alert_settings({
        "OBSERVATOIRE_ALERT_WEBHOOK_URL": "https://hooks.example.org/T/B/secret",
        "OBSERVATOIRE_ALERT_SMTP_HOST": "smtp.example.org",
        "OBSERVATOIRE_ALERT_SMTP_SECURITY": "SSL",
        "OBSERVATOIRE_ALERT_SMTP_USER": "obs", "OBSERVATOIRE_ALERT_SMTP_PASSWORD": "pw-123456",
        "OBSERVATOIRE_ALERT_SMTP_FROM": "obs@example.org",
        "OBSERVATOIRE_ALERT_SMTP_TO": "a@example.org, b@example.org,"})
    assert settings.channels == ("webhook", "email")
    assert (settings.smtp_port, settings.smtp_security) == (465, "ssl")
    assert settings.smtp_to == ("a@example.org", "b@example.org")
    assert "secret" not in repr(settings) and "pw-123456" not in repr(settings)
    assert load_alert_settings({"OBSERVATOIRE_ALERT_SMTP_PORT": "2525"}).smtp_port == 2525
    assert load_alert_settings({}).smtp_port == 587


def test_alert_test_command(tmp_path, receiver, monkeypatch):
    """`observatoire alert --test` sends one alert to the configured webhook and says so;
    without a channel it fails with the variables to set; `alert` lists what was sent."""
    from typer.testing import CliRunner

    from dagster_project.cli.app import app

    for name in ("OBSERVATOIRE_ALERT_WEBHOOK_URL", "OBSERVATOIRE_ALERT_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    data = ["--data-dir", str(tmp_path / "data")]
    none = CliRunner().invoke(app, ["alert", "--test", *data])
    assert none.exit_code == 1 and "OBSERVATOIRE_ALERT_WEBHOOK_URL" in none.output
    res = CliRunner().invoke(app, ["alert", "--test", *data],
                             env={"OBSERVATOIRE_ALERT_WEBHOOK_URL": receiver.url,
                                  "COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "1 delivery(ies) sent, 0 failed (webhook)" in res.output
    [body] = receiver.accepted
    assert body["event"] == "test" and body["text"].startswith("Observatoire: test alert")
    listed = CliRunner().invoke(app, ["alert", *data], env={"COLUMNS": "200"})
    assert "test  Observatoire: test alert" in listed.output and "webhook sent" in listed.output
    assert SECRET_PATH not in res.output + listed.output
