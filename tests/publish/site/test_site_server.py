"""`observatoire site --serve` sends the headers docs/site.md gives for a web server."""
from __future__ import annotations

import threading

import requests

from dagster_project.cli.publish import site_server
from dagster_project.publish.site.build import CSP


def test_the_local_site_server_sends_the_security_headers(tmp_path):
    (tmp_path / "index.html").write_text("<!doctype html><title>x</title>", encoding="utf-8")
    with site_server(tmp_path, 0) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            got = requests.get(f"http://127.0.0.1:{httpd.server_port}/index.html", timeout=10)
        finally:
            httpd.shutdown()
            thread.join(timeout=10)
    assert got.status_code == 200 and "<title>x</title>" in got.text
    assert got.headers["Content-Security-Policy"] == CSP + "; frame-ancestors 'none'"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Referrer-Policy"] == "no-referrer"
    assert got.headers["X-Frame-Options"] == "DENY"


def test_the_documented_nginx_headers_are_the_ones_sent():
    import re
    from pathlib import Path

    from dagster_project.publish.site.build import HTTP_HEADERS

    doc = (Path(__file__).parents[3] / "docs" / "site.md").read_text(encoding="utf-8")
    documented = dict(re.findall(r'^add_header (\S+) "([^"]*)" always;', doc, re.MULTILINE))
    assert documented == HTTP_HEADERS
