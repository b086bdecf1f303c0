"""The observatory's alert outbox: record an event once, deliver it, retry what failed.

An alert is one event worth telling a human about (a run failed, a month is not
published, the Instagram token expires soon…), raised by Dagster sensors. Sensors tick
every few minutes and raise the same event again and again, so every alert is recorded
under a key ("run_failed:<run_id>", "not_published:2026-11"): a key is recorded once,
and delivered once per channel (chat webhook and/or e-mail; at least once, see below).

The outbox is a SQLite file, `<data_dir>/alerts/outbox.sqlite`, shared by the daemon's
sensors and the CLI. `deliver_pending` goes through the undelivered (alert, channel) rows
oldest first, one at a time: it claims one inside a short write transaction (so two
processes never send the same alert at once, and a concurrent call takes the next one),
sends it outside it, marks it, then claims the next. Each delivery ends:
- sent;
- failed, for good, when the receiver refuses that message (webhook HTTP 4xx except the
  channel-level 401/403/404/407/408/410/429, SMTP 5xx at MAIL, RCPT or DATA): logged, kept
  with its error (listed by `observatoire alert`), never retried; the channel goes on with
  the next messages;
- still pending, when the channel itself failed (timeout, connection error, HTTP 3xx,
  5xx or a channel-level 4xx, SMTP 4xx or login refused): logged, and the channel's
  other messages wait for the next call; given up ("abandoned") 72 h after the alert was
  recorded.
Delivering never raises: an alert must never fail a run or a sensor.

Delivery is at least once (a process can die between sending and marking it sent), so
every message carries an id stable across retries: the webhook JSON's `id` (the key) and
the e-mail's `Message-ID` (derived from the key); a receiver can drop a repeat.

No secret (Instagram token, app secret, SMTP password, webhook URL) is stored or sent:
text and detail are scrubbed when recorded, and errors are scrubbed before being logged.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import smtplib
import sqlite3
import time
from collections.abc import Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import requests

from dagster_project.warehouse import transaction

log = logging.getLogger(__name__)

CHANNELS = ("webhook", "email")
NO_CHANNEL = "none"                     # pseudo-channel: "recorded, nowhere to send it"
SECURITIES = ("starttls", "ssl", "none")
GIVE_UP_AFTER = dt.timedelta(hours=72)
CLAIM_EXPIRES = dt.timedelta(minutes=10)
# webhook 4xx answers about the channel (URL, credentials, throttling), not the message:
# the channel is retried at the next call instead of the message being failed for good
CHANNEL_HTTP_ERRORS = frozenset({401, 403, 404, 407, 408, 410, 429})
DETAIL_MAX = 3000
WEBHOOK_TEXT_MAX = 3500
ERROR_MAX = 300
MIN_SECRET_LEN = 8
SECRET_ENV = ("INSTAGRAM_ACCESS_TOKEN", "INSTAGRAM_APP_SECRET",
              "OBSERVATOIRE_ALERT_SMTP_PASSWORD", "OBSERVATOIRE_ALERT_WEBHOOK_URL")
_SECRET_PARAM = re.compile(r"\b(access_token|client_secret|appsecret_proof)=[^&\s\"'<>]+",
                           re.IGNORECASE)
_BEARER = re.compile(r"\b(Bearer)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    key        TEXT PRIMARY KEY,
    event      TEXT NOT NULL,
    month      TEXT,
    run_id     TEXT,
    text       TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL             -- UTC, ISO 8601 ("2026-11-03T10:00:00Z")
);
CREATE TABLE IF NOT EXISTS deliveries (
    key        TEXT NOT NULL REFERENCES alerts(key),
    channel    TEXT NOT NULL,            -- webhook | email | none (no channel configured)
    state      TEXT NOT NULL DEFAULT 'pending',  -- pending|sending|sent|failed|abandoned
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    claimed_at TEXT,                     -- when state became 'sending'
    sent_at    TEXT,
    PRIMARY KEY (key, channel)
);
"""


@dataclass(frozen=True)
class Alert:
    """One event to tell a human about."""
    event: str                 # run_failed, not_published, token_expiring, verify_failed…
    text: str                  # one human sentence
    month: str | None = None   # "YYYY-MM" when the event concerns a month
    run_id: str | None = None  # Dagster run id when it concerns a run
    detail: str = ""           # longer explanation: failing step and error, problems…


@dataclass(frozen=True)
class AlertSettings:
    """Where alerts go (environment variables: see `load_alert_settings`)."""
    webhook_url: str | None = field(default=None, repr=False)   # a secret (Slack, Mattermost)
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_from: str | None = None
    smtp_to: tuple[str, ...] = ()
    smtp_security: str = "starttls"
    timeout_s: float = 10.0

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(c for c, on in zip(CHANNELS, (self.webhook_url, self.smtp_host)) if on)


@dataclass(frozen=True)
class Delivery:
    """What one `deliver_pending` call did: deliveries sent / failed (attempts that failed,
    refused ones included), still pending after; `refused`: those of `failed` the receiver
    refused for good (state 'failed', not retried)."""
    sent: int
    failed: int
    pending: int
    refused: int = 0


# --- settings ---------------------------------------------------------------------------

def load_alert_settings(environ: Mapping[str, str] | None = None) -> AlertSettings:
    """AlertSettings from the environment; a malformed value is a ValueError naming it."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        return (env.get(f"OBSERVATOIRE_ALERT_{name}") or "").strip() or None

    url, host, security = get("WEBHOOK_URL"), get("SMTP_HOST"), get("SMTP_SECURITY")
    security = (security or "starttls").lower()
    if security not in SECURITIES:
        raise ValueError(f"OBSERVATOIRE_ALERT_SMTP_SECURITY={security!r}: expected one of "
                         + ", ".join(SECURITIES))
    if url and urlsplit(url).scheme not in ("http", "https"):
        # never echo the URL itself: chat webhook URLs are secrets
        raise ValueError("OBSERVATOIRE_ALERT_WEBHOOK_URL is not an http(s) URL")
    port = _port(get("SMTP_PORT"), 465 if security == "ssl" else 587)
    to = tuple(a.strip() for a in (get("SMTP_TO") or "").split(",") if a.strip())
    user, password, sender = get("SMTP_USER"), get("SMTP_PASSWORD"), get("SMTP_FROM")
    if host and not to:
        raise ValueError("OBSERVATOIRE_ALERT_SMTP_TO is required when "
                         "OBSERVATOIRE_ALERT_SMTP_HOST is set (comma-separated addresses)")
    if host and not sender:
        raise ValueError("OBSERVATOIRE_ALERT_SMTP_FROM is required when "
                         "OBSERVATOIRE_ALERT_SMTP_HOST is set")
    if host and user and not password:
        raise ValueError("OBSERVATOIRE_ALERT_SMTP_PASSWORD is required when "
                         "OBSERVATOIRE_ALERT_SMTP_USER is set")
    return AlertSettings(webhook_url=url, smtp_host=host, smtp_port=port, smtp_user=user,
                         smtp_password=password, smtp_from=sender, smtp_to=to,
                         smtp_security=security)


def _port(raw: str | None, default: int) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ValueError(f"OBSERVATOIRE_ALERT_SMTP_PORT={raw!r}: expected a port number "
                         "(1 to 65535)")
    return int(raw)


# --- scrubbing --------------------------------------------------------------------------

def _secrets(environ: Mapping[str, str], extra: Iterable[str | None] = ()) -> list[str]:
    values = [environ.get(name) or "" for name in SECRET_ENV] + [v or "" for v in extra]
    # longest first, so a secret containing another one is replaced whole
    return sorted({v for v in values if len(v) >= MIN_SECRET_LEN}, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with the given secret values, access tokens in URLs and Bearer values -> ***."""
    for secret in secrets:
        text = text.replace(secret, "***")
    text = _SECRET_PARAM.sub(lambda m: f"{m.group(1)}=***", text)
    return _BEARER.sub(lambda m: f"{m.group(1)} ***", text)


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _url_origin(url: str) -> str:
    """scheme://host[:port] of a webhook URL: what may be logged of it."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def _describe_error(exc: BaseException, settings: AlertSettings) -> str:
    """A short, secret-free description of a delivery error (requests puts URLs in them)."""
    message = _smtp_reply(exc) or f"{type(exc).__name__}: {exc}"
    url = settings.webhook_url
    if url:
        parts = urlsplit(url)
        message = message.replace(url, _url_origin(url) + "/<redacted>")
        for piece in (f"{parts.path}?{parts.query}", parts.path):
            if len(piece) > 1:
                message = message.replace(piece, "/<redacted>")
    secrets = _secrets(os.environ, (settings.smtp_password, settings.webhook_url))
    return _cap(scrub(message, secrets), ERROR_MAX)


def _smtp_reply(exc: BaseException) -> str | None:
    """'SMTP 550: <the server's text>' for an SMTP refusal, else None."""
    def text(raw: bytes | str) -> str:
        raw = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return " ".join(raw.split())

    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "SMTP recipients refused: " + "; ".join(
            f"{addr}: {code} {text(msg)}" for addr, (code, msg) in exc.recipients.items())
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"SMTP {exc.smtp_code}: {text(exc.smtp_error)}"
    return None


# --- storage ----------------------------------------------------------------------------

def outbox_path(data_dir: Path) -> Path:
    return Path(data_dir) / "alerts" / "outbox.sqlite"


def _connect(data_dir: Path) -> sqlite3.Connection:
    path = outbox_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)  # explicit transactions
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA)
    return conn


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


def record(data_dir: Path, key: str, alert: Alert, *, now: dt.datetime | None = None) -> bool:
    """Store `alert` under `key`, scrubbed; True if new, False if the key was already there."""
    secrets = _secrets(os.environ)
    text = scrub(alert.text, secrets)
    detail = _cap(scrub(alert.detail or "", secrets), DETAIL_MAX)
    with closing(_connect(data_dir)) as conn:
        cur = conn.execute(
            "INSERT OR IGNORE INTO alerts (key, event, month, run_id, text, detail, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key, alert.event, alert.month, alert.run_id, text, detail, _iso(_now(now))))
        return cur.rowcount == 1


# --- delivery ---------------------------------------------------------------------------

def deliver_pending(data_dir: Path, settings: AlertSettings | None = None, *,
                    now: dt.datetime | None = None) -> Delivery:
    """Send every recorded alert not yet delivered on a configured channel. Never raises."""
    try:
        settings = load_alert_settings() if settings is None else settings
    except ValueError as exc:
        log.error("alerts not delivered, bad alert settings: %s", exc)
        return Delivery(0, 0, 0)
    try:
        return _deliver(data_dir, settings, _now(now))
    except Exception as exc:  # noqa: BLE001 — an alert must never fail a run or a sensor
        log.error("alert delivery failed: %s", _describe_error(exc, settings))
        return Delivery(0, 0, 0)


def _deliver(data_dir: Path, settings: AlertSettings, now: dt.datetime) -> Delivery:
    channels = settings.channels or (NO_CHANNEL,)
    started = time.monotonic()
    with closing(_connect(data_dir)) as conn:
        _prepare(conn, channels, now)
        sent = failed = refused = 0
        broken: set[str] = set()          # channels that failed during this call
        while NO_CHANNEL not in channels:
            # claimed_at is the claim's real time (`now` plus the time this call took)
            row = _claim_next(conn, tuple(c for c in channels if c not in broken), now,
                              now + dt.timedelta(seconds=time.monotonic() - started))
            if row is None:
                break
            state, error = _send(row, settings)
            _mark(conn, row, state, error=error, now=now)
            if state == "sent":
                sent += 1
                continue
            failed += 1
            _warn_failure(row, settings, error or "", refused=state == "failed")
            if state == "failed":
                refused += 1
            else:                         # don't wait N timeouts on a dead server
                broken.add(row["channel"])
        return Delivery(sent, failed, _count_pending(conn, channels), refused)


def _free(channels: tuple[str, ...]) -> str:
    """SQL condition: a delivery on `channels` nobody is sending (or whose claim expired);
    parameters: *channels, the claim expiry cutoff."""
    marks = ",".join("?" * len(channels))
    return (f"channel IN ({marks}) AND (state = 'pending'"
            " OR (state = 'sending' AND claimed_at < ?))")


def _prepare(conn: sqlite3.Connection, channels: tuple[str, ...], now: dt.datetime) -> None:
    """Inside one write transaction: create missing delivery rows, give up on old ones."""
    free = _free(channels)
    cutoff, stale = _iso(now - GIVE_UP_AFTER), _iso(now - CLAIM_EXPIRES)
    with transaction(conn, "BEGIN IMMEDIATE"):
        new = conn.execute(
            "INSERT OR IGNORE INTO deliveries (key, channel) SELECT a.key, c.value"
            " FROM alerts a, json_each(?) c WHERE a.created_at >= ? RETURNING key, channel",
            (json.dumps(list(channels)), cutoff)).fetchall()
        abandoned = conn.execute(
            f"UPDATE deliveries SET state = 'abandoned', claimed_at = NULL WHERE {free}"
            " AND key IN (SELECT key FROM alerts WHERE created_at < ?)"
            " RETURNING key, channel, attempts, last_error",
            (*channels, stale, cutoff)).fetchall()
    _log_unrouted(conn, [r for r in new if r["channel"] == NO_CHANNEL])
    for row in abandoned:
        log.error("alert %s given up on %s: undelivered %d h after it was recorded "
                  "(%d attempts, last error: %s)", row["key"], row["channel"],
                  GIVE_UP_AFTER // dt.timedelta(hours=1), row["attempts"], row["last_error"])


def _claim_next(conn: sqlite3.Connection, channels: tuple[str, ...], now: dt.datetime,
                claimed_at: dt.datetime) -> dict | None:
    """Inside a short write transaction: mark the oldest free delivery on `channels`
    'sending' and return it with its alert; None when there is none left."""
    if not channels:
        return None
    cutoff, stale = _iso(now - GIVE_UP_AFTER), _iso(now - CLAIM_EXPIRES)
    with transaction(conn, "BEGIN IMMEDIATE"):
        row = conn.execute(
            "SELECT a.*, d.channel FROM deliveries d JOIN alerts a ON a.key = d.key"
            f" WHERE {_free(channels)} AND a.created_at >= ?"
            " ORDER BY a.created_at, a.key, d.channel LIMIT 1",
            (*channels, stale, cutoff)).fetchone()
        if row is not None:
            conn.execute("UPDATE deliveries SET state = 'sending', claimed_at = ?"
                         " WHERE key = ? AND channel = ?",
                         (_iso(claimed_at), row["key"], row["channel"]))
    return None if row is None else dict(row)


def _log_unrouted(conn: sqlite3.Connection, new: list[sqlite3.Row]) -> None:
    for row in new:
        text = conn.execute("SELECT text FROM alerts WHERE key = ?", (row["key"],)).fetchone()
        log.warning("no alert channel configured: %s", text["text"])


def _mark(conn: sqlite3.Connection, row: dict, state: str, *, error: str | None,
          now: dt.datetime) -> None:
    conn.execute(
        "UPDATE deliveries SET state = ?, claimed_at = NULL, attempts = attempts + 1,"
        " last_error = COALESCE(?, last_error), sent_at = ? WHERE key = ? AND channel = ?",
        (state, error, _iso(now) if state == "sent" else None,
         row["key"], row["channel"]))


def _count_pending(conn: sqlite3.Connection, channels: tuple[str, ...]) -> int:
    marks = ",".join("?" * len(channels))
    return conn.execute(f"SELECT COUNT(*) FROM deliveries WHERE channel IN ({marks})"
                        " AND state IN ('pending', 'sending')", channels).fetchone()[0]


def _warn_failure(row: dict, settings: AlertSettings, error: str, *, refused: bool) -> None:
    where = (_url_origin(settings.webhook_url or "") if row["channel"] == "webhook"
             else f"{settings.smtp_host}:{settings.smtp_port}")
    if refused:
        log.error("alert %s refused by %s (%s): %s; marked failed, not retried",
                  row["key"], row["channel"], where, error)
    else:
        log.warning("alert %s not delivered by %s (%s): %s; retried at the next call",
                    row["key"], row["channel"], where, error)


def _send(row: dict, settings: AlertSettings) -> tuple[str, str | None]:
    """Send one alert on its channel: ("sent", None), or ("failed", error) when the
    receiver refuses this message for good, or ("pending", error) when the channel failed
    (error scrubbed)."""
    try:
        if row["channel"] == "webhook":
            status, error = _post_webhook(row, settings)
            if error is None:
                return "sent", None
            refused = 400 <= status < 500 and status not in CHANNEL_HTTP_ERRORS
            return ("failed" if refused else "pending"), error
        _send_email(row, settings)
        return "sent", None
    except Exception as exc:  # noqa: BLE001 — any failure: kept, logged, retried
        return ("failed" if _smtp_refused(exc) else "pending"), _describe_error(exc, settings)


def _smtp_refused(exc: BaseException) -> bool:
    """True for an SMTP permanent (5xx) refusal of this message, at MAIL, RCPT or DATA."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):   # every recipient refused
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    if isinstance(exc, smtplib.SMTPDataError | smtplib.SMTPSenderRefused):
        return exc.smtp_code >= 500
    return False


# --- channels ---------------------------------------------------------------------------

def webhook_payload(row: Mapping) -> dict:
    """The JSON posted to a chat webhook (Slack, Mattermost, Rocket.Chat read `text`)."""
    detail = row["detail"] if row["detail"] and row["detail"] not in row["text"] else ""
    text = row["text"] + (f" — {detail}" if detail else "")
    return {"text": _cap(text, WEBHOOK_TEXT_MAX), "event": row["event"],
            "month": row["month"], "run_id": row["run_id"], "detail": row["detail"],
            "id": row["key"]}   # the outbox key: same on a retry, for the receiver to dedup


def _post_webhook(row: Mapping, settings: AlertSettings) -> tuple[int, str | None]:
    """(HTTP status, None when accepted else the scrubbed error)."""
    response = requests.post(settings.webhook_url, json=webhook_payload(row),
                             headers={"Content-Type": "application/json"},
                             timeout=settings.timeout_s, allow_redirects=False)
    if response.status_code >= 300:
        body = " ".join(response.text.split())[:200]
        return response.status_code, _cap(scrub(
            f"HTTP {response.status_code}: {body}",
            _secrets(os.environ, (settings.webhook_url,))), ERROR_MAX)
    return response.status_code, None


def message_id(key: str) -> str:
    """The e-mail Message-ID of the alert recorded under `key`: the same on every retry."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@observatoire>"


def email_message(row: Mapping, settings: AlertSettings) -> EmailMessage:
    month = f" {row['month']}" if row["month"] else ""
    first = " ".join(row["text"].split())[:80]
    message = EmailMessage()
    message["Subject"] = f"[Observatoire] {row['event']}{month}: {first}"
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(settings.smtp_to)
    message["Message-ID"] = message_id(row["key"])
    message.set_content(f"{row['text']}\n\nevent: {row['event']}\nmonth: {row['month'] or '-'}\n"
                        f"run_id: {row['run_id'] or '-'}\n\n{row['detail']}\n")
    return message


def _send_email(row: Mapping, settings: AlertSettings) -> None:
    host, port, timeout = settings.smtp_host, settings.smtp_port, settings.timeout_s
    if settings.smtp_security == "ssl":
        client = smtplib.SMTP_SSL(host, port, timeout=timeout)
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
    with client:
        if settings.smtp_security == "starttls":
            client.starttls()
        if settings.smtp_user:
            client.login(settings.smtp_user, settings.smtp_password or "")
        client.send_message(email_message(row, settings))


# --- front doors ------------------------------------------------------------------------

def notify(data_dir: Path, key: str, alert: Alert, settings: AlertSettings | None = None, *,
           now: dt.datetime | None = None) -> bool:
    """record() then deliver_pending(); True if the alert is new. Never raises."""
    try:
        new = record(data_dir, key, alert, now=now)
    except Exception as exc:  # noqa: BLE001 — never fail the caller (a run, a sensor)
        log.error("alert %s not recorded: %s: %s", key, type(exc).__name__, exc)
        new = False
    deliver_pending(data_dir, settings, now=now)
    return new


def recent(data_dir: Path, limit: int = 20) -> list[dict]:
    """The latest recorded alerts, newest first, with their state on each channel."""
    if not outbox_path(data_dir).exists():
        return []
    with closing(_connect(data_dir)) as conn:
        alerts = conn.execute(
            "SELECT key, event, month, run_id, text, created_at FROM alerts"
            " ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,)).fetchall()
        result = []
        for alert in alerts:
            rows = conn.execute(
                "SELECT channel, state, attempts, last_error, sent_at FROM deliveries"
                " WHERE key = ? ORDER BY channel", (alert["key"],)).fetchall()
            channels = {r["channel"]: {"state": r["state"], "attempts": r["attempts"],
                                       "last_error": r["last_error"], "sent_at": r["sent_at"]}
                        for r in rows}
            result.append({**dict(alert), "channels": channels})
        return result
