"""The Graph API client: requests session, auth header, error classification, retries,
paging of one account's `business_discovery` (one landing record per account).

Error mapping (Graph API error JSON `{"error": {"message","type","code","error_subcode",…}}`):

=====================================================  =====================================
code / subcode / HTTP                                  outcome
=====================================================  =====================================
190 (any HTTP status), 102                             TokenError: everything stops at once
4, 17, 32, 613, 80001–80009, or HTTP 429               throttled: in hold mode (the daily
                                                       collection) the governor holds every
                                                       worker and probes (governor.py), the
                                                       request is retried after the hold;
                                                       otherwise a global pause (Retry-After
                                                       or capped exponential backoff with
                                                       jitter), retried; per-account budget
                                                       of throttle waits, then status error
1, 2, `is_transient: true`, HTTP 5xx, timeouts,        transient: up to `max_attempts`
connection errors/resets, non-JSON bodies              attempts (tenacity, exponential
                                                       backoff + jitter), then status error
subcode in NOT_BUSINESS_SUBCODES (2207065*), or a      not_business
message saying a Business/Creator account is required
subcode in NOT_FOUND_SUBCODES (2207013 "Cannot find    not_found
User"), code 110, or a message "cannot find user",
"cannot be found", "does not exist", "invalid user id"
anything else (e.g. code 100 "Invalid parameter",      error (this account only)
code 10 / 200–299 permissions)
=====================================================  =====================================

(*) Meta documents 2207013 as the business_discovery answer for an unknown username (the API
also gives it for personal accounts, which it cannot see, so those usually land as
not_found). 2207065 is our reserved "not a business/creator account" subcode; the
message test catches any wording Meta uses for it.

Secrets: the token travels only in the `Authorization: Bearer` header; every message that
comes from the server or from `requests` is redacted before it reaches a landing line, a log
record or an exception.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import random
import re
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from dagster_project.collect.graph_api.governor import Governor
from dagster_project.collect.graph_api.options import CollectorOptions, TokenError
from dagster_project.registry.accounts import is_valid_handle
from dagster_project.settings import Settings

log = logging.getLogger(__name__)

SOURCE = "graph_api"
ACCOUNT_FIELDS = "id,username,name,followers_count,follows_count,media_count"
MEDIA_FIELDS = (
    "id,timestamp,media_type,media_product_type,like_count,comments_count,permalink,view_count")

TOKEN_ERROR_CODES = frozenset({190, 102})
THROTTLE_CODES = frozenset({4, 17, 32, 613, *range(80001, 80010)})
TRANSIENT_CODES = frozenset({1, 2})
NOT_FOUND_SUBCODES = frozenset({2207013})
NOT_BUSINESS_SUBCODES = frozenset({2207065})
NOT_FOUND_CODES = frozenset({110})
_NOT_BUSINESS_RE = re.compile(
    r"not\s+an?\s+(instagram\s+)?(business|creator|professional)"
    r"|(business|creator|professional)\s+(or\s+\w+\s+)?account[s]?\s+(is\s+)?(only|required)"
    r"|must\s+be\s+an?\s+(instagram\s+)?(business|creator|professional)",
    re.IGNORECASE)
_NOT_FOUND_RE = re.compile(
    r"cannot\s+find\s+user|cannot\s+be\s+found|could\s+not\s+be\s+found|does\s+not\s+exist"
    r"|invalid\s+user\s+id|unknown\s+user|no\s+user", re.IGNORECASE)
# A cursor goes inside the field expansion: anything that could change the query is refused.
_CURSOR_RE = re.compile(r"^[A-Za-z0-9_\-=+/.%]{1,1024}$")
USER_ID_RE = re.compile(r"^[0-9]{1,32}$")
_ACCESS_TOKEN_PARAM_RE = re.compile(r"(access_token=)[^&\s'\"]+", re.IGNORECASE)
_BEARER_RE = re.compile(r"(Bearer\s+)[A-Za-z0-9._\-~+/=]+", re.IGNORECASE)
MAX_MESSAGE_CHARS = 500


def redactor(*secrets: str | None) -> Callable[[Any], str]:
    """A function that writes `text` with every form of the secrets (raw, URL-quoted),
    access_token parameters and Bearer values replaced by ***, capped to
    MAX_MESSAGE_CHARS: what any message that may have seen a token goes through."""
    forms = sorted({f for s in secrets if s for f in (s, urllib.parse.quote(s, safe=""),
                                                      urllib.parse.quote_plus(s))},
                   key=len, reverse=True)

    def redact(text: Any) -> str:
        out = str(text)
        for form in forms:
            out = out.replace(form, "***")
        out = _ACCESS_TOKEN_PARAM_RE.sub(r"\1***", out)
        out = _BEARER_RE.sub(r"\1***", out)
        if len(out) > MAX_MESSAGE_CHARS:
            out = out[:MAX_MESSAGE_CHARS] + "…"
        return out
    return redact


def build_fields(handle: str, after: str | None = None, limit: int = 50) -> str:
    """The `fields` parameter for one page of one account (handle must be valid)."""
    if not is_valid_handle(handle):
        raise ValueError(f"invalid handle {handle!r}")
    if after is not None and not _CURSOR_RE.match(after):
        raise ValueError("invalid paging cursor")
    media = f"media.after({after}).limit({limit})" if after else f"media.limit({limit})"
    return f"business_discovery.username({handle}){{{ACCOUNT_FIELDS},{media}{{{MEDIA_FIELDS}}}}}"


def classify_error(code: int | None, subcode: int | None, message: str) -> str:
    """Per-account status for a non-fatal, non-throttling Graph API error."""
    if subcode in NOT_BUSINESS_SUBCODES:
        return "not_business"
    if subcode in NOT_FOUND_SUBCODES:
        return "not_found"
    if _NOT_BUSINESS_RE.search(message or ""):
        return "not_business"
    if code in NOT_FOUND_CODES or _NOT_FOUND_RE.search(message or ""):
        return "not_found"
    return "error"


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _parse_ts(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            return dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def iso_z(value: dt.datetime) -> str:
    return utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Cancelled(Exception):
    """The collection is stopping: give up quietly."""


class _AccountFailure(Exception):
    def __init__(self, status: str, code: int | None, subcode: int | None, message: str):
        super().__init__(message)
        self.status, self.code, self.subcode, self.message = status, code, subcode, message


class _Transient(Exception):
    def __init__(self, code: int | None, subcode: int | None, message: str):
        super().__init__(message)
        self.code, self.subcode, self.message = code, subcode, message


@dataclass
class _Throttled:
    code: int | None
    subcode: int | None
    message: str
    retry_after: float | None


@dataclass
class _AccountState:
    first_request_at: dt.datetime | None = None
    throttle_waited: float = 0.0
    throttle_attempt: int = 0


class GraphClient:
    def __init__(self, settings: Settings, opts: CollectorOptions, max_in_flight: int,
                 now: Callable[[], dt.datetime], stop: threading.Event,
                 on_pause: Callable[[dict], None] | None = None):
        self._token = settings.access_token or ""
        self.redact = redactor(self._token)
        self._url = f"{settings.graph_url.rstrip('/')}/{settings.instagram_user_id}"
        self._opts = opts
        self._now = now
        self._stop = stop
        self._lock = threading.Lock()
        self.requests = 0
        self.throttle_errors = 0
        self.transient_retries = 0
        self.stop_reason: str | None = None
        self.governor = Governor(opts, self._sleep, stop=self.request_stop,
                                 on_pause=on_pause)
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, max_in_flight),
                              pool_block=True, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.headers.update({
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json",
            "User-Agent": "observatoire-collector/1.0",
        })

    def __repr__(self) -> str:
        return f"<GraphApiCollector url={self._url!r} token=***>"

    def close(self) -> None:
        self.governor.close()
        self._session.close()

    def request_stop(self, reason: str) -> None:
        """Stop the run: no request is sent any more (the first reason is kept)."""
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
        if not self._stop.is_set():
            log.warning("Graph API collection stopping (%s): accounts in flight are dropped "
                        "and fetched next run", reason)
        self._stop.set()

    # -- secrets
    # -- waiting
    def _sleep(self, seconds: float) -> None:
        if self._stop.is_set():
            raise Cancelled()
        if seconds > 0:
            if self._opts.sleep is not None:
                self._opts.sleep(seconds)
            else:
                self._stop.wait(seconds)
        if self._stop.is_set():
            raise Cancelled()

    def _scaled_sleep(self, seconds: float) -> None:  # for tenacity (planned seconds)
        self._sleep(seconds * self._opts.backoff_scale)

    # -- one account
    def collect_account(self, handle: str) -> dict | None:
        state = _AccountState()
        try:
            bd = self._fetch_account(handle, state)
            status, error = "ok", None
        except _AccountFailure as fail:
            bd, status = None, fail.status
            error = {"code": fail.code, "subcode": fail.subcode, "message": fail.message}
            log.warning("@%s: %s (code %s, subcode %s): %s", handle, status, fail.code,
                        fail.subcode, fail.message)
        except Cancelled:
            return None
        except TokenError:
            raise
        except Exception as exc:  # noqa: BLE001 — a bug or the unforeseen: this account only
            bd, status = None, "error"
            error = {"code": None, "subcode": None,
                     "message": f"unexpected {type(exc).__name__}: {self.redact(exc)}"}
            log.error("@%s: %s", handle, error["message"])
        fetched = state.first_request_at or self._now()
        return {"handle": handle, "fetched_at": iso_z(fetched), "source": SOURCE,
                "status": status, "error": error, "business_discovery": bd}

    def _fetch_account(self, handle: str, state: _AccountState) -> dict:
        opts = self._opts
        first: dict | None = None
        media: list = []
        seen_ids: set = set()
        seen_cursors: set[str] = set()
        after: str | None = None
        for _page in range(max(1, opts.max_pages)):
            body = self._request(build_fields(handle, after, opts.page_size), state)
            bd = body.get("business_discovery")
            if not isinstance(bd, dict):
                raise _AccountFailure("error", None, None,
                                      "unexpected response: no business_discovery object")
            if first is None:
                first = bd
            block = bd.get("media") if isinstance(bd.get("media"), dict) else {}
            data = block.get("data") if isinstance(block.get("data"), list) else []
            for item in data:
                key = item.get("id") if isinstance(item, dict) else None
                if key is None or key in seen_ids:
                    continue
                seen_ids.add(key)
                media.append(item)
            paging = block.get("paging") if isinstance(block.get("paging"), dict) else {}
            cursors = paging.get("cursors") if isinstance(paging.get("cursors"), dict) else {}
            cursor = cursors.get("after")
            if not data or not isinstance(cursor, str) or not cursor or cursor in seen_cursors:
                break
            # business_discovery may omit `next`; a short page without `next` is the last one
            if "next" not in paging and len(data) < opts.page_size:
                break
            if not _CURSOR_RE.match(cursor):
                log.warning("@%s: paging cursor with unexpected characters: paging stopped",
                            handle)
                break
            stamps = [t for t in (_parse_ts(i.get("timestamp")) for i in data
                                  if isinstance(i, dict)) if t is not None]
            horizon = utc(state.first_request_at or self._now()) - dt.timedelta(
                days=opts.window_days)
            if stamps and min(stamps) < horizon:
                break
            seen_cursors.add(cursor)
            after = cursor
        assert first is not None
        result = {k: v for k, v in first.items() if k != "media"}
        if "media" in first or media:
            result["media"] = {"data": media}
        return result

    def _request(self, fields: str, state: _AccountState) -> dict:
        opts = self._opts
        while True:
            try:
                outcome = self._request_with_retries(fields, state)
            except _Transient as exc:
                raise _AccountFailure(
                    "error", exc.code, exc.subcode,
                    f"gave up after {opts.max_attempts} attempts: {exc.message}") from None
            if not isinstance(outcome, _Throttled):
                return outcome
            if self._stop.is_set():  # the run is stopping: no retry
                with self._lock:
                    self.throttle_errors += 1
                raise Cancelled()
            if self.governor.holds:  # the governor holds every worker: retry after it
                state.throttle_attempt += 1
                with self._lock:
                    self.throttle_errors += 1
                continue
            # rate limited: shared pause, unlimited retries within the per-account budget
            if outcome.retry_after is not None:
                planned = outcome.retry_after
            else:
                base = min(opts.throttle_max_s, opts.throttle_initial_s * 2 ** min(
                    state.throttle_attempt, 30))
                planned = base / 2 + random.uniform(0, base / 2)
            state.throttle_attempt += 1
            with self._lock:
                self.throttle_errors += 1
            self.governor.pause(planned)
            if state.throttle_waited + planned > opts.throttle_budget_s:
                raise _AccountFailure(
                    "error", outcome.code, outcome.subcode,
                    f"rate limited for {state.throttle_waited:.0f} s, next wait {planned:.0f} s "
                    f"exceeds the {opts.throttle_budget_s:.0f} s budget per account: "
                    f"{outcome.message}")
            state.throttle_waited += planned
            log.info("rate limited (code %s): waiting %.1f s", outcome.code, planned)

    def _request_with_retries(self, fields: str, state: _AccountState) -> dict | _Throttled:
        opts = self._opts

        def before_sleep(rs: Any) -> None:
            with self._lock:
                self.transient_retries += 1
            exc = rs.outcome.exception() if rs.outcome else None
            log.debug("transient failure (attempt %d): %s", rs.attempt_number,
                      getattr(exc, "message", type(exc).__name__))

        retrying = Retrying(
            stop=stop_after_attempt(max(1, opts.max_attempts)),
            wait=wait_exponential_jitter(initial=opts.retry_initial_s, max=opts.retry_max_s,
                                         jitter=opts.retry_initial_s),
            retry=retry_if_exception_type(_Transient),
            sleep=self._scaled_sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(self._send, fields, state)

    def _send(self, fields: str, state: _AccountState) -> dict | _Throttled:
        probe = self.governor.wait_turn()
        if self._stop.is_set():
            if probe:
                self.governor.probe_failed()
            raise Cancelled()
        if state.first_request_at is None:
            state.first_request_at = utc(self._now())
        with self._lock:
            self.requests += 1
        try:
            resp = self._session.get(self._url, params={"fields": fields},
                                     timeout=(self._opts.connect_timeout, self._opts.read_timeout),
                                     allow_redirects=False)
        except requests.RequestException as exc:
            if probe:
                self.governor.probe_failed()
            if isinstance(exc, requests.Timeout):
                raise _Transient(None, None, f"timeout ({type(exc).__name__})") from None
            raise _Transient(None, None,
                             f"{type(exc).__name__}: {self.redact(exc)}") from None
        status = resp.status_code
        try:
            body = json.loads(resp.content) if resp.content else None
        except ValueError:
            body = None
        err = body.get("error") if isinstance(body, dict) else None
        code = _as_int(err.get("code")) if isinstance(err, dict) else None
        self.governor.observe(resp.headers, probe=probe,
                              throttled=(f"code {code}" if code in THROTTLE_CODES
                                         else "HTTP 429" if status == 429 else None),
                              retry_after=_parse_retry_after(resp.headers.get("Retry-After")))
        if isinstance(err, dict):
            subcode = _as_int(err.get("error_subcode"))
            parts = [str(err.get(k)) for k in ("message", "error_user_title", "error_user_msg")
                     if err.get(k)]
            message = self.redact(" — ".join(parts) or f"HTTP {status}")
            if code in TOKEN_ERROR_CODES:
                self._stop.set()
                raise TokenError(
                    f"Instagram Graph API rejected the access token (code {code}, subcode "
                    f"{subcode}): {message}. Collection stopped; landing files already written "
                    "are kept. Generate a new long-lived access token, set "
                    "INSTAGRAM_ACCESS_TOKEN and run again (accounts already collected this "
                    "month are skipped).")
            if code in THROTTLE_CODES or status == 429:
                return _Throttled(code, subcode, message,
                                  _parse_retry_after(resp.headers.get("Retry-After")))
            if code in TRANSIENT_CODES or err.get("is_transient") is True or status >= 500:
                raise _Transient(code, subcode, f"HTTP {status}: {message}")
            raise _AccountFailure(classify_error(code, subcode, message), code, subcode, message)
        if status == 429:
            return _Throttled(None, None, "HTTP 429 Too Many Requests",
                              _parse_retry_after(resp.headers.get("Retry-After")))
        if status >= 500:
            raise _Transient(None, None, f"HTTP {status}")
        if not isinstance(body, dict):
            ctype = self.redact(resp.headers.get("Content-Type", "?"))[:80]
            raise _Transient(None, None, f"HTTP {status}: response is not a JSON object ({ctype})")
        if status >= 300:
            raise _AccountFailure("error", None, None, f"HTTP {status} without a Graph API error")
        return body


def check_credentials(settings: Settings, doing: str = "collecting") -> None:
    """The token and the observatory's own account id are set (TokenError / ValueError)."""
    if not settings.access_token:
        raise TokenError("INSTAGRAM_ACCESS_TOKEN is not set: create a long-lived Instagram "
                         f"Graph API access token and export it before {doing}")
    if not settings.instagram_user_id or not USER_ID_RE.match(settings.instagram_user_id):
        raise ValueError("INSTAGRAM_USER_ID must be set to the numeric id of the observatory's "
                         "own Instagram business account (used for business_discovery)")


def open_client(settings: Settings, options: CollectorOptions | None = None,
                max_in_flight: int = 4, stop: threading.Event | None = None,
                now: Callable[[], dt.datetime] | None = None) -> GraphClient:
    """The collector's HTTP client on its own (for `observatoire accounts check`): same
    credential rules, retries, throttling and redaction; `collect_account(handle)` gives
    one landing record. Raises TokenError / ValueError like `collect_month`."""
    check_credentials(settings, "checking accounts")
    return GraphClient(settings, options or CollectorOptions(), max(1, max_in_flight),
                       now or utcnow, stop or threading.Event())
