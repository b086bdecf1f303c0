"""Production collector: Instagram Graph API `business_discovery` → landing NDJSON (docs/landing-format.md).

One call per account (plus one per extra page of media while posts are still inside the
30-day window), `max_in_flight` accounts at a time, one landing line per account, files
written atomically every `batch_size` finished accounts.

Error mapping (Graph API error JSON `{"error": {"message","type","code","error_subcode",…}}`):

=====================================================  =====================================
code / subcode / HTTP                                  outcome
=====================================================  =====================================
190 (any HTTP status), 102                             TokenError: everything stops at once
4, 17, 32, 613, 80001–80009, or HTTP 429               throttled: global pause (Retry-After
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

Usage headers `X-App-Usage` / `X-Business-Use-Case-Usage` are read on every response: the
highest percentage seen drives a shared governor — above `usage_slowdown_pct` (80 %) request
starts are spaced proportionally across all workers; at ≥ 100 % (or when
`estimated_time_to_regain_access` > 0) every worker pauses for that many minutes, or for a
doubling backoff when no estimate is given.

The daily collection window (`collection_plan`, `collection`) uses four more knobs, all off
by default: `calls_per_hour` paces request starts (one every 3600/rate seconds across all
workers); `stop_usage_pct` turns "pause" into "stop": once the usage headers reach it (or say 100 %
or a time to regain access), no request is sent any more — accounts finished are written,
accounts in flight are dropped (never written, so never written twice) and the next run
fetches them (a rate-limit answer without such headers is still paused for and retried); `max_calls`, `max_run_s` and `max_accounts` are the run's budgets: once
one is reached no new account starts and the accounts in flight finish.
`CollectionResult.stopped_reason` says which limit ended the run (None: every account done).

Resumption: an account with a snapshot of status ok, not_found or not_business fetched this
month is collected; it is skipped by later runs of the month. `error` accounts are retried.

Secrets: the token travels only in the `Authorization: Bearer` header; every message that
comes from the server or from `requests` is redacted before it reaches a landing line, a log
record or an exception.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import gzip
import json
import logging
import random
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from ..landing import iter_month_files, month_dir, write_landing_file
from ..months import current_month, month_key
from ..registry import Account, is_valid_handle
from ..settings import Settings

log = logging.getLogger(__name__)

SOURCE = "graph_api"
ACCOUNT_FIELDS = "id,username,name,followers_count,follows_count,media_count"
MEDIA_FIELDS = "id,timestamp,media_type,media_product_type,like_count,comments_count,permalink"

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
_USER_ID_RE = re.compile(r"^[0-9]{1,32}$")
_ACCESS_TOKEN_PARAM_RE = re.compile(r"(access_token=)[^&\s'\"]+", re.IGNORECASE)
_BEARER_RE = re.compile(r"(Bearer\s+)[A-Za-z0-9._\-~+/=]+", re.IGNORECASE)
MAX_MESSAGE_CHARS = 500


class TokenError(RuntimeError):
    """The access token is missing, invalid or expired (Graph API code 190): stop at once."""


@dataclass(frozen=True)
class CollectorOptions:
    """Tuning knobs; the defaults are the production values. All waits are in seconds."""
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    # transient failures (5xx, timeouts, resets, non-JSON): attempts per request
    max_attempts: int = 5
    retry_initial_s: float = 1.0
    retry_max_s: float = 30.0
    # rate-limit errors: unlimited retries, bounded by a per-account total wait
    throttle_initial_s: float = 30.0
    throttle_max_s: float = 300.0
    throttle_budget_s: float = 900.0
    # usage headers
    usage_slowdown_pct: float = 80.0
    usage_slowdown_max_s: float = 5.0   # spacing between request starts as usage → 100 %
    usage_pause_s: float = 60.0         # pause at ≥ 100 % without a regain estimate (doubling)
    usage_pause_max_s: float = 3600.0
    # paging
    window_days: int = 30
    page_size: int = 50
    max_pages: int = 40
    # tests: every wait is multiplied by backoff_scale; `sleep` receives the scaled seconds
    backoff_scale: float = 1.0
    sleep: Callable[[float], None] | None = None
    # daily collection (module docstring); the defaults change nothing
    calls_per_hour: float = 0.0          # pace request starts (0: no pacing)
    stop_usage_pct: float | None = None  # usage ≥ this or a rate-limit answer: stop, not pause
    max_calls: int | None = None         # the run's call budget
    max_run_s: float | None = None       # the run's time budget (seconds, not scaled)
    max_accounts: int | None = None      # the run's quota of accounts


@dataclass
class CollectionResult:
    month: dt.date
    ok: int
    not_found: int
    not_business: int
    error: int
    skipped: int
    requests: int
    throttled: int
    files: list[Path]
    invalid_handles: list[str]
    elapsed_s: float
    # breakdown (not part of the minimal contract, handy in Dagster metadata)
    throttle_errors: int = 0
    usage_pauses: int = 0
    usage_slowdowns: int = 0
    transient_retries: int = 0
    usage_max_pct: float = 0.0
    # why the run ended before every account was done: usage | call_budget | time_budget |
    # quota; None when every account of the run was collected
    stopped_reason: str | None = None
    dropped: int = 0      # accounts in flight at a stop: not written, fetched next run
    remaining: int = 0    # accounts left for the next run (dropped included)

    @property
    def collected(self) -> int:
        return self.ok + self.not_found + self.not_business + self.error

    def as_metadata(self) -> dict:
        names = ", ".join(p.name for p in self.files)
        invalid = ", ".join(self.invalid_handles)
        return {
            "month": month_key(self.month),
            "accounts_collected": self.collected,
            "ok": self.ok,
            "not_found": self.not_found,
            "not_business": self.not_business,
            "error": self.error,
            "skipped_already_collected": self.skipped,
            "invalid_handles": len(self.invalid_handles),
            "invalid_handle_list": invalid[:2000],
            "requests": self.requests,
            "throttled": self.throttled,
            "throttle_errors": self.throttle_errors,
            "usage_pauses": self.usage_pauses,
            "usage_slowdowns": self.usage_slowdowns,
            "transient_retries": self.transient_retries,
            "usage_max_pct": round(float(self.usage_max_pct), 1),
            "files": len(self.files),
            "file_names": names[:2000],
            "elapsed_s": round(float(self.elapsed_s), 3),
            "accounts_per_s": round(self.collected / self.elapsed_s, 2) if self.elapsed_s > 0 else 0.0,
            "stopped_reason": self.stopped_reason or "done",
            "dropped_in_flight": self.dropped,
            "remaining_for_next_run": self.remaining,
        }


# --------------------------------------------------------------------------- helpers

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


def parse_usage(headers: Any) -> tuple[float | None, float]:
    """(highest usage percentage, estimated minutes to regain access) from response headers."""
    pct: float | None = None
    regain = 0.0

    def bump(value: Any) -> None:
        nonlocal pct
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            pct = float(value) if pct is None else max(pct, float(value))

    raw = headers.get("X-App-Usage")
    if raw:
        try:
            app = json.loads(raw)
        except ValueError:
            app = None
        if isinstance(app, dict):
            for key in ("call_count", "total_cputime", "total_time"):
                bump(app.get(key))
    raw = headers.get("X-Business-Use-Case-Usage")
    if raw:
        try:
            buc = json.loads(raw)
        except ValueError:
            buc = None
        if isinstance(buc, dict):
            for entries in buc.values():
                for entry in entries if isinstance(entries, list) else [entries]:
                    if not isinstance(entry, dict):
                        continue
                    for key in ("call_count", "total_cputime", "total_time"):
                        bump(entry.get(key))
                    eta = entry.get("estimated_time_to_regain_access")
                    if isinstance(eta, (int, float)) and not isinstance(eta, bool):
                        regain = max(regain, float(eta))
    return pct, regain


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


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _iso_z(value: dt.datetime) -> str:
    return _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


COLLECTED_STATUSES = frozenset({"ok", "not_found", "not_business"})


def read_ok_handles(folder: Path, month: dt.date) -> set[str]:
    """Handles with an `ok` snapshot fetched in `month` in the month's landing files."""
    return {h for h, (status, _at) in read_month_statuses(folder, month).items()
            if status == "ok"}


def read_collected_handles(folder: Path, month: dt.date) -> set[str]:
    """Handles collected in `month`: a snapshot of status ok, not_found or not_business."""
    return {h for h, (status, _at) in read_month_statuses(folder, month).items()
            if status in COLLECTED_STATUSES}


def read_month_statuses(folder: Path, month: dt.date) -> dict[str, tuple[str, dt.datetime]]:
    """handle → (status, fetched_at) of its month: the latest ok / not_found / not_business
    snapshot fetched in `month` if any, else its latest snapshot (an `error`).

    Malformed lines, unreadable/truncated files and `demo` lines are ignored silently.
    """
    out: dict[str, tuple[str, dt.datetime]] = {}

    def rank(status: str, when: dt.datetime) -> tuple[bool, dt.datetime]:
        return status in COLLECTED_STATUSES, when

    for path in iter_month_files(folder):
        opener = gzip.open if path.name.endswith(".gz") else open
        try:
            with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
                for raw in fh:
                    try:
                        obj = json.loads(raw)
                    except ValueError:
                        continue
                    if not isinstance(obj, dict) or not isinstance(obj.get("status"), str):
                        continue
                    status = obj["status"]
                    handle, fetched = obj.get("handle"), obj.get("fetched_at")
                    if not isinstance(handle, str) or obj.get("source") == "demo":
                        continue
                    if not isinstance(fetched, str):
                        continue
                    try:
                        when = _utc(dt.datetime.fromisoformat(fetched))
                    except ValueError:
                        continue
                    if when.year != month.year or when.month != month.month:
                        continue
                    key = handle.strip().lstrip("@").lower()
                    seen = out.get(key)
                    if seen is None or rank(status, when) >= rank(*seen):
                        out[key] = (status, when)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            log.debug("landing file %s partly unreadable (%s): lines read so far kept",
                      path.name, type(exc).__name__)
    return out


# --------------------------------------------------------------------------- internals

class _Cancelled(Exception):
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


class _Governor:
    """Shared pacing of request starts across workers, driven by usage headers and 429s."""

    def __init__(self, opts: CollectorOptions, sleep: Callable[[float], None]):
        self._opts = opts
        self._sleep = sleep
        self._lock = threading.Lock()
        self._pause_until = 0.0
        self._usage_pause_until = 0.0
        self._next_slot = 0.0
        self._usage = 0.0
        self._saturated = 0
        self.max_usage = 0.0
        self.usage_pauses = 0
        self.slowdowns = 0
        self.paced = 0
        self._pace_s = 3600.0 / opts.calls_per_hour if opts.calls_per_hour > 0 else 0.0

    def _interval(self) -> float:
        lo = self._opts.usage_slowdown_pct
        if self._usage <= lo or self._usage >= 100:
            return 0.0
        return self._opts.usage_slowdown_max_s * (self._usage - lo) / (100.0 - lo)

    def wait_turn(self) -> None:
        scale = self._opts.backoff_scale
        with self._lock:
            now = time.monotonic()
            start = max(now, self._pause_until)
            usage_interval = self._interval()
            interval = max(usage_interval, self._pace_s) * scale
            paced = False
            if interval > 0:
                if self._next_slot > start:
                    start, paced = self._next_slot, True
                self._next_slot = start + interval
            if paced:
                if usage_interval > self._pace_s:
                    self.slowdowns += 1
                else:
                    self.paced += 1
        delay = start - now
        if delay > 0:
            self._sleep(delay)

    def pause(self, planned_s: float) -> None:
        with self._lock:
            until = time.monotonic() + planned_s * self._opts.backoff_scale
            self._pause_until = max(self._pause_until, until)

    def observe(self, headers: Any) -> bool:
        """Read the usage headers; True when the run must stop (`stop_usage_pct` reached)."""
        pct, regain_min = parse_usage(headers)
        if pct is None and regain_min <= 0:
            return False
        opts = self._opts
        with self._lock:
            if pct is not None:
                self._usage = pct
                self.max_usage = max(self.max_usage, pct)
            saturated = (pct is not None and pct >= 100) or regain_min > 0
            if opts.stop_usage_pct is not None and (
                    saturated or (pct is not None and pct >= opts.stop_usage_pct)):
                return True  # the caller stops the run: no pause
            if not saturated:
                self._saturated = 0
                return False
            if regain_min > 0:
                planned = min(regain_min * 60.0, opts.usage_pause_max_s)
            else:
                planned = min(opts.usage_pause_s * 2 ** min(self._saturated, 16),
                              opts.usage_pause_max_s)
            now = time.monotonic()
            if self._usage_pause_until > now:  # already in a usage pause: answers to
                return False                    # requests sent before it don't stack
            self._saturated += 1
            self._usage_pause_until = now + planned * opts.backoff_scale
            self._pause_until = max(self._pause_until, self._usage_pause_until)
            self.usage_pauses += 1
        log.warning("Graph API usage at %.0f%%: pausing all requests for %.0f s",
                    pct if pct is not None else 100.0, planned)
        return False


class _Collector:
    def __init__(self, settings: Settings, opts: CollectorOptions, max_in_flight: int,
                 now: Callable[[], dt.datetime], stop: threading.Event):
        self._token = settings.access_token or ""
        self._secrets = sorted({s for s in (self._token,
                                            urllib.parse.quote(self._token, safe=""),
                                            urllib.parse.quote_plus(self._token)) if s},
                               key=len, reverse=True)
        self._url = f"{settings.graph_url.rstrip('/')}/{settings.instagram_user_id}"
        self._opts = opts
        self._now = now
        self._stop = stop
        self._lock = threading.Lock()
        self.requests = 0
        self.throttle_errors = 0
        self.transient_retries = 0
        self.stop_reason: str | None = None
        self.governor = _Governor(opts, self._sleep)
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
    def redact(self, text: Any) -> str:
        out = str(text)
        for secret in self._secrets:
            out = out.replace(secret, "***")
        out = _ACCESS_TOKEN_PARAM_RE.sub(r"\1***", out)
        out = _BEARER_RE.sub(r"\1***", out)
        if len(out) > MAX_MESSAGE_CHARS:
            out = out[:MAX_MESSAGE_CHARS] + "…"
        return out

    # -- waiting
    def _sleep(self, seconds: float) -> None:
        if self._stop.is_set():
            raise _Cancelled()
        if seconds > 0:
            if self._opts.sleep is not None:
                self._opts.sleep(seconds)
            else:
                self._stop.wait(seconds)
        if self._stop.is_set():
            raise _Cancelled()

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
        except _Cancelled:
            return None
        except TokenError:
            raise
        except Exception as exc:  # noqa: BLE001 — a bug or the unforeseen: this account only
            bd, status = None, "error"
            error = {"code": None, "subcode": None,
                     "message": f"unexpected {type(exc).__name__}: {self.redact(exc)}"}
            log.error("@%s: %s", handle, error["message"])
        fetched = state.first_request_at or self._now()
        return {"handle": handle, "fetched_at": _iso_z(fetched), "source": SOURCE,
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
            horizon = _utc(state.first_request_at or self._now()) - dt.timedelta(
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
            if self._stop.is_set():  # the usage headers stopped the run: no retry
                with self._lock:
                    self.throttle_errors += 1
                raise _Cancelled()
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
        self.governor.wait_turn()
        if self._stop.is_set():
            raise _Cancelled()
        if state.first_request_at is None:
            state.first_request_at = _utc(self._now())
        with self._lock:
            self.requests += 1
        try:
            resp = self._session.get(self._url, params={"fields": fields},
                                     timeout=(self._opts.connect_timeout, self._opts.read_timeout),
                                     allow_redirects=False)
        except requests.Timeout as exc:
            raise _Transient(None, None, f"timeout ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            raise _Transient(None, None,
                             f"{type(exc).__name__}: {self.redact(exc)}") from None
        if self.governor.observe(resp.headers):
            self.request_stop("usage")
        status = resp.status_code
        try:
            body = json.loads(resp.content) if resp.content else None
        except ValueError:
            body = None
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict):
            code, subcode = _as_int(err.get("code")), _as_int(err.get("error_subcode"))
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


class _BatchWriter:
    """Atomic landing files `graph_api-<run stamp>-<seq>.ndjson.gz`, never overwriting
    (written and listed in the month's manifest by `landing.write_landing_file`)."""

    def __init__(self, landing_dir: Path, stamp: str, redact: Callable[[str], str],
                 secret: str):
        self._landing_dir = Path(landing_dir)
        self._stamp = stamp
        self._seq = 0
        self._redact = redact
        self._secret = secret
        self.files: list[Path] = []

    def write(self, records: list[dict]) -> None:
        by_month: dict[str, list[str]] = {}
        for rec in records:
            line = json.dumps(rec, ensure_ascii=False, separators=(",", ":"))
            if self._secret and self._secret in line:  # belt and braces
                line = line.replace(self._secret, "***")
            # a run straddling midnight at month end: each line goes to its fetched_at month
            by_month.setdefault(rec["fetched_at"][:7], []).append(line)
        for key, lines in sorted(by_month.items()):
            folder = self._landing_dir / key
            while True:
                self._seq += 1
                path = folder / f"{SOURCE}-{self._stamp}-{self._seq:04d}.ndjson.gz"
                if path.exists():
                    continue
                try:
                    write_landing_file(path, lines, source=SOURCE)
                except FileExistsError:
                    continue
                break
            self.files.append(path)
            log.info("landing file %s (%d accounts)", path.name, len(lines))


class _RunBudget:
    """The run's own limits (max_accounts, max_calls, max_run_s), checked before each account
    starts: once one is reached no account starts any more; accounts in flight finish."""

    def __init__(self, opts: CollectorOptions, collector: _Collector, t0: float):
        self._opts = opts
        self._collector = collector
        self._t0 = t0
        self._lock = threading.Lock()
        self._started = 0
        self._in_flight = 0
        self.dropped = 0
        self.reason: str | None = None

    def _limit(self) -> str | None:
        opts = self._opts
        if opts.max_accounts is not None and self._started >= opts.max_accounts:
            return "quota"
        # one call reserved per account in flight: the budget is not overrun by their first page
        if opts.max_calls is not None and (
                self._collector.requests + self._in_flight >= opts.max_calls):
            return "call_budget"
        if opts.max_run_s is not None and time.monotonic() - self._t0 >= opts.max_run_s:
            return "time_budget"
        return None

    def run(self, handle: str) -> dict | None:
        with self._lock:
            if self._collector.stop_reason is not None:
                return None  # the run is stopping: this account never started
            if self.reason is None:
                self.reason = self._limit()
            if self.reason is not None:
                return None
            self._started += 1
            self._in_flight += 1
        try:
            rec = self._collector.collect_account(handle)
        finally:
            with self._lock:
                self._in_flight -= 1
        if rec is None:
            with self._lock:
                self.dropped += 1
        return rec


# --------------------------------------------------------------------------- public API

def collect_month(accounts: list[Account], month: dt.date, settings: Settings, *,
                  max_in_flight: int = 8, batch_size: int = 50,
                  progress: Callable[[dict], None] | None = None,
                  now: Callable[[], dt.datetime] | None = None,
                  options: CollectorOptions | None = None) -> CollectionResult:
    """Collect today's snapshot of every account into the current month's landing folder.

    Raises ValueError for a month other than the current one (the Graph API only returns
    today's figures) and TokenError when the token is missing or rejected (code 190).
    """
    opts = options or CollectorOptions()
    now = now or _utcnow
    t0 = time.monotonic()
    started = _utc(now())
    month = month.replace(day=1)
    current = current_month(started.date())
    if month != current:
        raise ValueError(
            f"the Instagram Graph API only returns today's figures: it can collect "
            f"{month_key(current)} (the current month), not {month_key(month)}")
    if not settings.access_token:
        raise TokenError("INSTAGRAM_ACCESS_TOKEN is not set: create a long-lived Instagram "
                         "Graph API access token and export it before collecting")
    if not settings.instagram_user_id or not _USER_ID_RE.match(settings.instagram_user_id):
        raise ValueError("INSTAGRAM_USER_ID must be set to the numeric id of the observatory's "
                         "own Instagram business account (used for business_discovery)")
    if max_in_flight < 1 or batch_size < 1:
        raise ValueError("max_in_flight and batch_size must be ≥ 1")

    invalid: list[str] = []
    handles: list[str] = []
    seen: set[str] = set()
    for acc in accounts:
        h = acc.handle
        if not is_valid_handle(h):
            if h not in invalid:
                invalid.append(h)
            continue
        if h not in seen:
            seen.add(h)
            handles.append(h)
    if invalid:
        log.warning("%d invalid handle(s) not sent to the Graph API: %s", len(invalid),
                    ", ".join(repr(h) for h in invalid[:20]))
    already = read_collected_handles(month_dir(settings.landing_dir, month), month)
    todo = [h for h in handles if h not in already]
    skipped = len(handles) - len(todo)
    log.info("Graph API collection %s: %d accounts to fetch, %d already collected, %d invalid",
             month_key(month), len(todo), skipped, len(invalid))

    stop = threading.Event()
    collector = _Collector(settings, opts, max_in_flight, now, stop)
    writer = _BatchWriter(settings.landing_dir, started.strftime("%Y%m%dT%H%M%S"),
                          collector.redact, settings.access_token)
    counts = {"ok": 0, "not_found": 0, "not_business": 0, "error": 0}
    buffer: list[dict] = []
    done = 0
    budget = _RunBudget(opts, collector, t0)

    def report() -> None:
        if progress is not None:
            progress({"done": done, "ok": counts["ok"],
                      "failed": done - counts["ok"], "remaining": len(todo) - done,
                      "requests": collector.requests, "skipped": skipped,
                      "total": len(todo)})

    executor = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="graph-api")
    try:
        pending: set[Future] = set()
        queue = iter(todo)
        # keep a bounded queue in front of the workers (cheap cancellation, bounded memory)
        for h in queue:
            pending.add(executor.submit(budget.run, h))
            if len(pending) >= max_in_flight * 2:
                break
        report()
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                rec = fut.result()  # TokenError propagates from here
                if rec is None:
                    continue
                done += 1
                counts[rec["status"]] += 1
                buffer.append(rec)
                if len(buffer) >= batch_size:
                    writer.write(buffer)
                    buffer = []
                report()
            if stop.is_set() or budget.reason is not None:
                continue  # no new account: drain the ones in flight
            for h in queue:
                pending.add(executor.submit(budget.run, h))
                if len(pending) >= max_in_flight * 2:
                    break
        if buffer:
            writer.write(buffer)
            buffer = []
    except BaseException:
        stop.set()
        executor.shutdown(wait=True, cancel_futures=True)
        collector.close()
        if buffer:
            log.warning("collection stopped: %d finished account(s) of the current batch were "
                        "not written (they will be fetched again next run)", len(buffer))
        raise
    executor.shutdown(wait=True)
    collector.close()

    gov = collector.governor
    result = CollectionResult(
        month=month, ok=counts["ok"], not_found=counts["not_found"],
        not_business=counts["not_business"], error=counts["error"], skipped=skipped,
        requests=collector.requests,
        throttled=collector.throttle_errors + gov.usage_pauses + gov.slowdowns,
        files=list(writer.files), invalid_handles=invalid,
        elapsed_s=time.monotonic() - t0,
        throttle_errors=collector.throttle_errors, usage_pauses=gov.usage_pauses,
        usage_slowdowns=gov.slowdowns, transient_retries=collector.transient_retries,
        usage_max_pct=gov.max_usage,
        stopped_reason=collector.stop_reason or budget.reason, dropped=budget.dropped,
        remaining=len(todo) - done)
    if result.stopped_reason:
        log.warning("Graph API collection %s stopped (%s): %d accounts left for the next run "
                    "(%d dropped in flight)", month_key(month), result.stopped_reason,
                    result.remaining, result.dropped)
    log.info("Graph API collection %s done: %d ok, %d not_found, %d not_business, %d error, "
             "%d skipped, %d requests, %d throttle waits, %.1f s", month_key(month), result.ok,
             result.not_found, result.not_business, result.error, result.skipped,
             result.requests, result.throttled, result.elapsed_s)
    return result


def open_client(settings: Settings, options: CollectorOptions | None = None,
                max_in_flight: int = 4, stop: threading.Event | None = None,
                now: Callable[[], dt.datetime] | None = None) -> _Collector:
    """The collector's HTTP client on its own (for `observatoire accounts check`): same
    credential rules, retries, throttling and redaction; `collect_account(handle)` gives
    one landing record. Raises TokenError / ValueError like `collect_month`."""
    if not settings.access_token:
        raise TokenError("INSTAGRAM_ACCESS_TOKEN is not set: create a long-lived Instagram "
                         "Graph API access token and export it before checking accounts")
    if not settings.instagram_user_id or not _USER_ID_RE.match(settings.instagram_user_id):
        raise ValueError("INSTAGRAM_USER_ID must be set to the numeric id of the observatory's "
                         "own Instagram business account (used for business_discovery)")
    return _Collector(settings, options or CollectorOptions(), max(1, max_in_flight),
                      now or _utcnow, stop or threading.Event())
