"""A chat incoming-webhook stand-in on 127.0.0.1: it keeps the JSON of every POST in
`bodies` and of those it accepted (200) in `accepted`. It answers 503 to everything while
`down` is true, 500 to the first `fail_first` posts, `refuse[marker]` to a message whose
text contains `marker`, else 200; `on_post(body)`, when set, runs before it answers, after
`delay_s` seconds. (test_serve.py has its own, which restarts on the same port.)"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    def __init__(self, path: str = "/hooks/observatoire") -> None:
        self.bodies: list[dict] = []        # every POST received
        self.accepted: list[dict] = []      # those answered 200
        self.down = False
        self.fail_first = 0
        self.refuse: dict[str, int] = {}    # text marker -> HTTP status answered
        self.on_post = None
        self.delay_s = 0.0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(receiver.delay_s)
                if receiver.on_post is not None:
                    receiver.on_post(body)
                with receiver.lock:
                    receiver.bodies.append(body)
                    status = receiver.status(body)
                    if status == 200:
                        receiver.accepted.append(body)
                self.send_response(status)
                self.end_headers()
                self.wfile.write({200: b"ok", 500: b"boom"}.get(status, b"invalid_payload"))

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def status(self, body: dict) -> int:
        if self.down:
            return 503
        if len(self.bodies) <= self.fail_first:
            return 500
        return next((s for m, s in self.refuse.items() if m in body.get("text", "")), 200)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
