"""A fake Wikidata SPARQL endpoint over real HTTP on 127.0.0.1.

It answers the observatory's per-kind queries (recognised by the code property they ask
for) with SPARQL 1.1 JSON results, and can answer 429 (with Retry-After) or 503 first.
"""
from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

PROPERTY_KIND = {"P2585": "region", "P2586": "departement", "P374": "commune", "P1616": "epci"}


def binding(qid: str, code: str, username: str, end: str | None = None) -> dict:
    row = {"item": {"type": "uri", "value": f"http://www.wikidata.org/entity/{qid}"},
           "code": {"type": "literal", "value": code},
           "username": {"type": "literal", "value": username}}
    if end:
        row["end"] = {"type": "literal", "value": end,
                      "datatype": "http://www.w3.org/2001/XMLSchema#dateTime"}
    return row


class FakeSparql:
    def __init__(self) -> None:
        self.rows: dict[str, list[dict]] = {k: [] for k in PROPERTY_KIND.values()}
        self.fail_first: list[int] = []     # HTTP statuses served before any answer
        self.retry_after = "0"
        self.requests: list[dict] = []      # {"kind", "user_agent", "status"}
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def add(self, kind: str, qid: str, code: str, username: str, end: str | None = None) -> None:
        self.rows[kind].append(binding(qid, code, username, end))

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/sparql"

    def __enter__(self) -> Self:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _answer(self, query: str) -> None:
                kind = next((k for p, k in PROPERTY_KIND.items() if f"wdt:{p} ?code" in query),
                            None)
                with fake.lock:
                    status = fake.fail_first.pop(0) if fake.fail_first else 200
                    fake.requests.append({"kind": kind, "status": status,
                                          "user_agent": self.headers.get("User-Agent", ""),
                                          "accept": self.headers.get("Accept", "")})
                if status != 200:
                    body = b"Too Many Requests" if status == 429 else b"busy"
                    self.send_response(status)
                    self.send_header("Retry-After", fake.retry_after)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if kind is None or "SELECT ?item ?code ?username ?end" not in query:
                    self.send_error(400, "unexpected query")
                    return
                body = json.dumps({"head": {"vars": ["item", "code", "username", "end"]},
                                   "results": {"bindings": fake.rows[kind]}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/sparql-results+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                self._answer(q.get("query", [""])[0])

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                self._answer(form.get("query", [""])[0])

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
