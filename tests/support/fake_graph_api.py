"""A fake Instagram Graph API (business_discovery only), served over real HTTP on 127.0.0.1.

    api = FakeGraphAPI(token="…", user_id="1789")
    api.add_account("gers", followers=15000, media=make_media(120, per_day=4))
    api.scenario("busy", throttle=2, throttle_code=4)
    with api:                      # starts the server in a thread
        settings = … graph_url=api.url …

Scenarios (per handle, keyword arguments of `scenario`):
  not_found=True            code 110 / subcode 2207013 "Cannot find User" (also: unknown handle)
  not_business=True         code 100 / subcode 2207065
  not_business_msg=True     code 100, no subcode, message only
  bad_param=True            code 100 "Invalid parameter" (generic error)
  graph_error=(S, C, M)     any Graph error body: HTTP status S, code C, message M (a
                            permission error, a retired API version…)
  throttle=N                first N requests rate limited; throttle_code=4|17|32|613|80002
                            or None for a bare HTTP 429; retry_after="2" adds Retry-After
  fail_5xx=N                first N requests answer 5xx (alternating JSON code 2 / HTML 502)
  permanent_5xx=True        always HTTP 503 (HTML)
  slow=S                    sleep S seconds before answering
  garbage=True              HTTP 200 with a non-JSON body
  reset=True                close the socket with a TCP RST, no response
  echo_token=True           error message echoing the token it received
  token_error=True          code 190 for this handle
  page_overlap=True         next page starts one item early (tests de-duplication)
Server-wide: latency (s), usage_schedule (list of percentages served in turn in
X-Business-Use-Case-Usage, last one repeated), regain_minutes, app_usage (X-App-Usage %),
expire_token_after (requests; afterwards every request gets code 190),
throttled_until (epoch seconds on Python's clock, which a simulated clock moves: until then
every Graph request is answered code 4 with usage 100 and `regain_minutes`),
page_overlap (next page starts one item early, to test de-duplication).
Token inspection: `GET /debug_token?input_token=…` answers like Meta's, authorised by the
user token itself or by `app_token` ("APP_ID|APP_SECRET" or an app access token); the
inspected token is described by `token_expires_at` / `token_data_access_expires_at` (epoch
seconds, 0 = never), `token_scopes`, `token_type`; an input token that is not `token`, or
an expired one, gives `is_valid: false` with Meta's error object.
Daily budget (the collection window's simulated days): with `daily_budget = N`, every
request of the simulated day counts; X-Business-Use-Case-Usage and X-App-Usage report
100 × calls / N, and a request beyond N is answered code 4 "Application request limit
reached" with estimated_time_to_regain_access. `new_day()` resets the count (the next day);
`calls_by_day` keeps each day's count.
Bursts (Meta's rolling one-hour limit, compressed): with `burst = (N, seconds)`, X-App-Usage
rises by 100/N per call; the N-th call of a cycle starts a throttled spell of `seconds`
(real time) in which every request is answered code 4 with usage 100; the first request
after the spell starts the next cycle at 0. `bursts` counts the spells.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import re
import socket
import struct
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

_FIELDS_RE = re.compile(r"^business_discovery\.username\(([^)]*)\)\{(.*)\}$", re.DOTALL)
_MEDIA_RE = re.compile(r"media(?:\.after\(([^)]*)\))?(?:\.limit\((\d+)\))?\{([^}]*)\}")


def make_media(n: int, *, per_day: float = 1.0, newest: dt.datetime | None = None,
               prefix: str = "m") -> list[dict]:
    """n posts, newest first, `per_day` posts a day starting one hour before `newest`."""
    newest = newest or dt.datetime.now(dt.UTC)
    step = dt.timedelta(days=1 / per_day)
    out = []
    for i in range(n):
        ts = newest - dt.timedelta(hours=1) - i * step
        out.append({
            "id": f"{prefix}{i:06d}",
            "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "media_type": "IMAGE",
            "media_product_type": "FEED",
            "like_count": 10 + i % 7,
            "comments_count": i % 3,
            "permalink": f"https://www.instagram.com/p/{prefix}{i}/",
        })
    return out


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(cursor: str) -> int:
    return int(base64.urlsafe_b64decode(cursor.encode()).decode().split(":")[1])


@dataclass
class FakeAccount:
    handle: str
    followers: int = 1000
    follows: int = 100
    media: list = field(default_factory=list)
    name: str = ""
    id: str = ""


class FakeGraphAPI:
    def __init__(self, token: str = "EAAtest-s3cr3t-token", user_id: str = "17841400000000001"):
        self.token = token
        self.user_id = user_id
        self.accounts: dict[str, FakeAccount] = {}
        self.scenarios: dict[str, dict] = {}
        self.latency = 0.0
        self.max_page_size = 100
        self.page_overlap = False
        self.usage_schedule: list[float] = []
        self.regain_minutes = 0
        self.app_usage: float | None = None
        self.expire_token_after: int | None = None
        self.daily_budget: int | None = None
        self.calls_today = 0
        self.calls_by_day: list[int] = [0]
        self.burst: tuple[int, float] | None = None
        self.throttled_until = 0.0
        self.app_token: str | None = None
        self.token_expires_at = 0
        self.token_data_access_expires_at = 0
        self.token_scopes = ["instagram_basic", "instagram_manage_insights",
                             "pages_read_engagement", "pages_show_list"]
        self.token_type = "USER"
        self._burst_calls = 0
        self._burst_until = 0.0
        self.bursts = 0
        # observations
        self.lock = threading.Lock()
        self.requests_by_handle: dict[str, int] = {}
        self.raw_paths: list[str] = []
        self.auth_headers: set[str] = set()
        self.total_requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.request_times: list[float] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- configuration
    def add_account(self, handle: str, *, followers: int = 1000, follows: int = 100,
                    media: list | None = None, **scenario) -> FakeAccount:
        acc = FakeAccount(handle, followers, follows, list(media or []),
                          name=handle.title(), id=str(17841400000000000 + len(self.accounts)))
        self.accounts[handle] = acc
        if scenario:
            self.scenario(handle, **scenario)
        return acc

    def scenario(self, handle: str, **kwargs) -> None:
        self.scenarios.setdefault(handle, {}).update(kwargs)

    def clear_scenario(self, handle: str) -> None:
        self.scenarios.pop(handle, None)

    def new_day(self) -> None:
        """The next simulated day: the daily budget is whole again."""
        with self.lock:
            self.calls_today = 0
            self.calls_by_day.append(0)

    def count(self, handle: str) -> int:
        with self.lock:
            return self.requests_by_handle.get(handle, 0)

    # ---- lifecycle
    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v23.0"

    def start(self) -> FakeGraphAPI:
        api = self

        class Handler(_Handler):
            fake = api

        server = _QuietServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        server.request_queue_size = 128
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-graph-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- request handling (called from handler threads)
    def handle(self, handler: _Handler) -> None:
        parsed = urllib.parse.urlsplit(handler.path)
        query = urllib.parse.parse_qs(parsed.query)
        fields = (query.get("fields") or [""])[0]
        m = _FIELDS_RE.match(fields)
        handle = m.group(1) if m else None
        auth = handler.headers.get("Authorization", "")
        with self.lock:
            self.total_requests += 1
            n_total = self.total_requests
            self.raw_paths.append(handler.path)
            self.auth_headers.add(auth)
            self.request_times.append(time.monotonic())
            if handle is not None:
                self.requests_by_handle[handle] = self.requests_by_handle.get(handle, 0) + 1
            n_handle = self.requests_by_handle.get(handle, 0)
            usage = None
            if self.usage_schedule:
                usage = self.usage_schedule[min(n_total - 1, len(self.usage_schedule) - 1)]
            over_budget = False
            if self.daily_budget is not None:
                self.calls_today += 1
                self.calls_by_day[-1] += 1
                usage = round(100.0 * self.calls_today / self.daily_budget, 1)
                over_budget = self.calls_today > self.daily_budget
            if self.burst is not None:
                every, spell_s = self.burst
                now = time.monotonic()
                if now < self._burst_until:
                    usage, over_budget = 100.0, True
                else:
                    if self._burst_until:  # the spell is over: usage fell, a new cycle
                        self._burst_until, self._burst_calls = 0.0, 0
                    self._burst_calls += 1
                    usage = round(100.0 * self._burst_calls / every, 1)
                    if self._burst_calls >= every:
                        self._burst_until, over_budget = now + spell_s, True
                        self.bursts += 1
            if time.time() < self.throttled_until:   # a throttled spell (Python's clock)
                usage, over_budget = 100.0, True
        sc = dict(self.scenarios.get(handle or "", {}))
        if self.latency:
            time.sleep(self.latency)
        if sc.get("slow"):
            time.sleep(sc["slow"])

        headers = {}
        if usage is not None:
            headers["X-Business-Use-Case-Usage"] = json.dumps({self.user_id: [{
                "type": "instagram", "call_count": usage, "total_cputime": usage / 2,
                "total_time": usage / 3,
                "estimated_time_to_regain_access": self.regain_minutes if usage >= 100 else 0}]})
        if self.app_usage is not None:
            headers["X-App-Usage"] = json.dumps({"call_count": self.app_usage,
                                                 "total_cputime": 1, "total_time": 1})
        elif self.daily_budget is not None or self.burst is not None:
            headers["X-App-Usage"] = json.dumps({"call_count": min(usage, 100),
                                                 "total_cputime": 1, "total_time": 1})

        def error(status: int, code: int, message: str, subcode: int | None = None,
                  extra_headers: dict | None = None, **more) -> None:
            err = {"message": message, "type": "OAuthException", "code": code,
                   "fbtrace_id": "AbCdEf123"}
            if subcode is not None:
                err["error_subcode"] = subcode
            err.update(more)
            handler.send_json(status, {"error": err}, {**headers, **(extra_headers or {})})

        # token checks first, like the real API
        if "access_token" in query:
            return error(400, 100, "token must not be sent in the URL (test server rule)")
        expected = f"Bearer {self.token}"
        expired = self.expire_token_after is not None and n_total > self.expire_token_after
        if parsed.path.rstrip("/").endswith("/debug_token"):
            return self._debug_token(handler, query, auth, expired, error)
        if auth != expected or expired or sc.get("token_error"):
            got = auth.removeprefix("Bearer ")
            return error(400, 190, f"Invalid OAuth access token - Cannot parse access token: {got}",
                         subcode=463 if expired else None)
        if parsed.path.rstrip("/").split("/")[-1] != self.user_id or m is None:
            return error(400, 100, "Unsupported get request (test server: bad path or fields)")
        if over_budget:
            return error(403, 4, "(#4) Application request limit reached", is_transient=True)

        if sc.get("reset"):
            return handler.reset()
        if sc.get("garbage"):
            return handler.send_raw(200, b"<html><body>Sorry, something went wrong</body></html>",
                                    "text/html", headers)
        if sc.get("permanent_5xx"):
            return handler.send_raw(503, b"<html>Service Unavailable</html>", "text/html", headers)
        if sc.get("fail_5xx", 0) >= n_handle:
            if n_handle % 2:
                return error(500, 2, "Service temporarily unavailable", is_transient=True)
            return handler.send_raw(502, b"<html>Bad Gateway</html>", "text/html", headers)
        if sc.get("throttle", 0) >= n_handle:
            extra = {}
            if sc.get("retry_after") is not None:
                extra["Retry-After"] = str(sc["retry_after"])
            code = sc.get("throttle_code", 4)
            if code is None:
                return handler.send_raw(429, b"Too Many Requests", "text/plain",
                                        {**headers, **extra})
            return error(400 if code != 4 else 403, code,
                         f"(#{code}) Application request limit reached", extra_headers=extra,
                         is_transient=True)
        if sc.get("graph_error"):
            status, code, message = sc["graph_error"]
            return error(status, code, message)
        if sc.get("echo_token"):
            return error(400, 100, f"Invalid parameter (token {auth[len('Bearer '):]} was used)")
        if sc.get("bad_param"):
            return error(400, 100, "Invalid parameter")
        if sc.get("not_business"):
            return error(400, 100, "Invalid parameter", subcode=2207065,
                         error_user_title="Not a business account")
        if sc.get("not_business_msg"):
            return error(400, 100, "The user must be a business or creator account")
        acc = self.accounts.get(handle)
        if acc is None or sc.get("not_found"):
            return error(400, 110, "Invalid user id", subcode=2207013, is_transient=False,
                         error_user_title="Cannot find User",
                         error_user_msg=f"The user with username: {handle} cannot be found.")

        body = {"id": acc.id, "username": acc.handle, "name": acc.name,
                "followers_count": acc.followers, "follows_count": acc.follows,
                "media_count": len(acc.media)}
        mm = _MEDIA_RE.search(m.group(2))
        if mm:
            after, limit = mm.group(1), int(mm.group(2) or 25)
            limit = min(limit, self.max_page_size)
            start = _offset(after) if after else 0
            if after and (self.page_overlap or sc.get("page_overlap")):
                start = max(0, start - 1)
            page = acc.media[start:start + limit]
            media: dict = {"data": page}
            if page:
                media["paging"] = {"cursors": {"before": _cursor(start),
                                               "after": _cursor(start + len(page))}}
                if start + len(page) < len(acc.media):
                    media["paging"]["next"] = "https://graph.example/next"
            body["media"] = media
        handler.send_json(200, {"business_discovery": body, "id": self.user_id}, headers)


    def _debug_token(self, handler, query, auth, expired, error) -> None:
        allowed = {f"Bearer {self.token}"} | ({f"Bearer {self.app_token}"} if self.app_token
                                             else set())
        if auth not in allowed or (expired and auth == f"Bearer {self.token}"):
            return error(400, 190, "Invalid OAuth access token - Cannot parse access token")
        given = (query.get("input_token") or [""])[0]
        now = int(time.time())
        data = {"app_id": "1234567890", "type": self.token_type,
                "application": "Observatoire (test)", "issued_at": now - 86400,
                "user_id": "10150000000000001", "scopes": list(self.token_scopes),
                "expires_at": self.token_expires_at,
                "data_access_expires_at": self.token_data_access_expires_at}
        if given != self.token:
            data = {"is_valid": False, "scopes": [], "error": {
                "code": 190, "message": "Invalid OAuth access token - Cannot parse access token",
                "subcode": None}}
        elif expired or (self.token_expires_at and self.token_expires_at < now):
            data.update(is_valid=False, error={
                "code": 190, "subcode": 463,
                "message": "Error validating access token: Session has expired"})
        else:
            data["is_valid"] = True
        handler.send_json(200, {"data": data}, {})


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # clients that time out or stop (TokenError) close sockets mid-answer: expected here
        import sys
        if not isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGraphAPI
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        fake = self.fake
        with fake.lock:
            fake.in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
        try:
            fake.handle(self)
        finally:
            with fake.lock:
                fake.in_flight -= 1

    def send_raw(self, status: int, body: bytes, ctype: str, headers: dict) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, obj: dict, headers: dict) -> None:
        self.send_raw(status, json.dumps(obj).encode(), "application/json; charset=UTF-8",
                      headers)

    def reset(self) -> None:
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
