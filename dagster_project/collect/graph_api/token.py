"""Token health: is the Instagram token valid, when does it expire, what may it do?

One call, Graph API `GET /debug_token?input_token=<the token>`. Meta requires "an app access
token or an app developer's user access token for the app" to authorise it:

- with `INSTAGRAM_APP_TOKEN` (an app access token) or `INSTAGRAM_APP_ID` and
  `INSTAGRAM_APP_SECRET` (sent as the app token `APP_ID|APP_SECRET`), any user token of the
  app can be inspected;
- without them, the user token authorises its own inspection, which Meta accepts when that
  user is an admin or developer of the app (the usual case for an observatory's own app).
  Otherwise the check answers `unknown` with Meta's message, and nothing else changes.

The tokens travel in the `Authorization` header, except the inspected token, which Meta
takes only as the `input_token` parameter: it is redacted from every message kept here.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

import requests

from dagster_project.collect.graph_api.client import redactor
from dagster_project.settings import Settings

# business_discovery needs these on a Facebook user token (ads_* only through Business Manager).
REQUIRED_SCOPES = ("instagram_basic", "instagram_manage_insights", "pages_read_engagement")
WARN_DAYS = 7


@dataclass(frozen=True)
class TokenHealth:
    """What `debug_token` says about the token (never the token itself)."""
    state: str                                  # valid | invalid | unknown | missing
    detail: str = ""                            # Meta's message, or why it is unknown
    expires_at: dt.datetime | None = None       # None: never expires, or unknown
    data_access_expires_at: dt.datetime | None = None
    never_expires: bool = False
    scopes: tuple[str, ...] = ()
    token_type: str | None = None               # USER, PAGE, SYSTEM_USER…
    checked_with: str = ""                      # "app token" | "the token itself"

    @property
    def missing_scopes(self) -> tuple[str, ...]:
        if self.state != "valid":
            return ()
        return tuple(s for s in REQUIRED_SCOPES if s not in self.scopes)

    @property
    def ends_at(self) -> tuple[str, dt.datetime] | None:
        """The first of the token's expiry and its data-access expiry (what, when)."""
        ends = [(what, when) for what, when in (("expires", self.expires_at),
                                                ("data access ends",
                                                 self.data_access_expires_at)) if when]
        return min(ends, key=lambda e: e[1]) if ends else None


def _epoch(value) -> dt.datetime | None:
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return None
    return dt.datetime.fromtimestamp(seconds, dt.UTC) if seconds > 0 else None


def app_token_from_env(environ: dict | None = None) -> str | None:
    env = os.environ if environ is None else environ
    if env.get("INSTAGRAM_APP_TOKEN"):
        return env["INSTAGRAM_APP_TOKEN"]
    if env.get("INSTAGRAM_APP_ID") and env.get("INSTAGRAM_APP_SECRET"):
        return f"{env['INSTAGRAM_APP_ID']}|{env['INSTAGRAM_APP_SECRET']}"
    return None


def check_token(settings: Settings, *, app_token: str | None = None,
                timeout_s: float = 15.0) -> TokenHealth:
    """Inspect `settings.access_token` with `debug_token` (one HTTP call, no retry)."""
    token = settings.access_token
    if not token:
        return TokenHealth("missing", "INSTAGRAM_ACCESS_TOKEN is not set")
    app_token = app_token or app_token_from_env()
    checked_with = "app token" if app_token else "the token itself"
    redact = redactor(token, app_token)
    try:
        resp = requests.get(f"{settings.graph_url.rstrip('/')}/debug_token",
                            params={"input_token": token, "fields": "app_id,type,application,"
                                    "expires_at,data_access_expires_at,is_valid,issued_at,"
                                    "scopes,user_id,error"},
                            headers={"Authorization": f"Bearer {app_token or token}",
                                     "Accept": "application/json"},
                            timeout=timeout_s)
        body = resp.json()
    except (requests.RequestException, ValueError) as exc:
        return TokenHealth("unknown", f"debug_token could not be read: {redact(exc)}",
                           checked_with=checked_with)
    if isinstance(body, dict) and "error" in body:  # the authorising token was refused
        err = body["error"] if isinstance(body["error"], dict) else {}
        msg = redact(err.get("message", body["error"]))
        if not app_token and err.get("code") == 190:  # the user token itself is refused
            return TokenHealth("invalid", msg, checked_with=checked_with)
        return TokenHealth("unknown", f"debug_token refused ({checked_with}): {msg}",
                           checked_with=checked_with)
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or not data:
        return TokenHealth("unknown", "debug_token gave no data", checked_with=checked_with)
    common = {"expires_at": _epoch(data.get("expires_at")),
                  "data_access_expires_at": _epoch(data.get("data_access_expires_at")),
                  "never_expires": str(data.get("expires_at")) == "0",
                  "scopes": tuple(str(s) for s in data.get("scopes") or ()),
                  "token_type": data.get("type"), "checked_with": checked_with}
    if data.get("is_valid") is True:
        return TokenHealth("valid", **common)
    err = data.get("error") if isinstance(data.get("error"), dict) else {}
    return TokenHealth("invalid", redact(err.get("message") or "Meta says the token is not "
                                         "valid"), **common)


def token_problem(health: TokenHealth, now: dt.datetime,
                  warn_days: int = WARN_DAYS) -> tuple[str, str, str] | None:
    """(event, key suffix, text) for an alert, or None when all is well or unknown.

    token_invalid: Meta says the token is invalid, or it lacks a scope business_discovery
    needs; token_expiring: it (or its data access) ends within `warn_days`. The suffix names
    the cause (per expiry date); the watch adds the day the problem was first seen."""
    if health.state == "invalid":
        return ("token_invalid", "invalid",
                (f"Observatoire: the Instagram token is invalid ({health.detail}): the night "
                "collection cannot run until it is renewed"))
    if health.state != "valid":
        return None
    if health.missing_scopes:
        missing = ", ".join(health.missing_scopes)
        return ("token_invalid", f"scopes:{missing}",
                (f"Observatoire: the Instagram token lacks the permission(s) {missing} that "
                "business_discovery needs"))
    ends = health.ends_at
    if ends is None:
        return None
    what, when = ends
    left = when - now.astimezone(dt.UTC)
    if left > dt.timedelta(days=warn_days):
        return None
    days = max(0, left.days)
    return ("token_expiring", f"{what}:{when.date().isoformat()}",
            (f"Observatoire: the Instagram token {what} on {when:%Y-%m-%d %H:%M} UTC "
            f"(in {days} day(s)): renew it before then"))


def token_rows(health: TokenHealth, now: dt.datetime) -> list[tuple[str, str]]:
    """(label, value) lines for `observatoire status`."""
    def when(t: dt.datetime | None, never: str = "unknown") -> str:
        if t is None:
            return never
        days = (t - now.astimezone(dt.UTC)).days
        return f"{t:%Y-%m-%d %H:%M} UTC ({days} day(s) left)" if days >= 0 else \
            f"{t:%Y-%m-%d %H:%M} UTC (passed)"
    if health.state == "missing":
        return [("token", "not set (INSTAGRAM_ACCESS_TOKEN): no Graph API collection")]
    label = {"valid": "[green]valid[/]", "invalid": "[red]invalid[/]",
             "unknown": "[yellow]not checked[/]"}[health.state]
    rows = [("token", f"{label}" + (f" ({health.token_type})" if health.token_type else "")
             + f", checked with {health.checked_with}"
             + (f": {health.detail}" if health.detail else ""))]
    if health.state == "unknown":
        return rows
    rows.append(("  expires", when(health.expires_at, "never" if health.never_expires
                                   else "unknown")))
    rows.append(("  data access until", when(health.data_access_expires_at, "no limit given")))
    scopes = ", ".join(health.scopes) or "none"
    if health.missing_scopes:
        scopes += f"  [red]missing: {', '.join(health.missing_scopes)}[/]"
    rows.append(("  scopes", scopes))
    problem = token_problem(health, now)
    if problem is not None:
        rows.append(("  alert", f"[red]{problem[2].removeprefix('Observatoire: ')}[/]"))
    return rows
