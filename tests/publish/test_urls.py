"""publish.urls.safe_url: the one gate of every URL the site, the report and the CSVs write
(issue 43). Pure, fast."""
from __future__ import annotations

import pytest

from dagster_project.publish.urls import profile_url, safe_url

REFUSED = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "  javascript:alert(1)",
    "\x00javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "jav&#x09;ascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "https://evil.example/p/phish/",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "https://www.instagram.com.evil.example/",
    "https://instagram.com.evil.example/p/x/",
    "https://evilinstagram.com/p/x/",
    "https://evil.example/https://www.instagram.com/",
    "https://evil.example#@www.instagram.com/",
    "https://evil.example?.instagram.com",
    "https://www.instagram.com@evil.example/",
    "https://user:pw@www.instagram.com/p/x/",
    "https://@www.instagram.com/p/x/",
    "https://www.instagram.com:8443/p/x/",
    "https://www.instagram.com:443/p/x/",     # no port at all: no real permalink has one
    "https://www.instagram.com./p/x/",
    "https://www.instagram.com\\@evil.example/",
    "https://www.instagram.com/p/x\\y/",
    "https://www.instagram.com/p/x\ny/",
    "https://www.instagram.com/p/x y/",
    "https://www.instagram.com/p/\x7f/",
    "https://www.ınstagram.com/p/x/",        # dotless i: not ASCII
    "https://www.instagram.com/p/é/",
    "https:www.instagram.com/p/x/",            # a browser reads it as https://www.instagram.com
    "https:/www.instagram.com/p/x/",
    "https://[www.instagram.com/p/x/",
    "http://www.instagram.com/p/x/",
    "ftp://www.instagram.com/p/x/",
    "www.instagram.com/p/x/",
    "p/x/",
    "#top",
    "",
    "   ",
    None,
    42,
    b"https://www.instagram.com/p/x/",
]
ALLOWED = [
    "https://www.instagram.com/p/abc/",
    "https://instagram.com/reel/x/?igsh=1",
    "HTTPS://WWW.INSTAGRAM.COM/p/x/",
    "https://Instagram.Com/p/x/",
    "https://www.instagram.com/p/x/?a=1&b=2#c",
    "https://www.instagram.com",
]


@pytest.mark.parametrize("value", REFUSED)
def test_refused(value):
    assert safe_url(value) is None


@pytest.mark.parametrize("value", ALLOWED)
def test_allowed(value):
    assert safe_url(value) == value
    assert safe_url(value, relative=True) == value


def test_what_a_browser_strips_is_stripped():
    assert safe_url(" \t https://www.instagram.com/p/abc/\n\x00 ") == "https://www.instagram.com/p/abc/"


@pytest.mark.parametrize("value", ["../../territoires/commune-37261.html", "index.html",
                                   "#alertes", "donnees/classements/mois=2021-07/classements.parquet",
                                   "classements/2021-07/petite_ville.html#r=76&d=32"])
def test_the_sites_own_relative_links(value):
    assert safe_url(value) is None                # never where a URL of the data is expected
    assert safe_url(value, relative=True) == value


@pytest.mark.parametrize("value", ["javascript:alert(1)", " JAVASCRIPT:x", "java\tscript:x",
                                   "data:,x", "//evil.example", "/etc/passwd", "\\\\evil.example\\x",
                                   "https://evil.example/", "a b.html", "mailto:x@example.org",
                                   "C:/x.html", "a\\b.html"])
def test_relative_refuses_what_is_not_a_relative_path(value):
    assert safe_url(value, relative=True) is None


def test_profile_url():
    assert profile_url("ville.tours_37") == "https://www.instagram.com/ville.tours_37/"
    assert profile_url("x/../../evil.example") == "https://www.instagram.com/x%2F..%2F..%2Fevil.example/"
    assert profile_url("a?b#c") == "https://www.instagram.com/a%3Fb%23c/"
    assert profile_url("été") == "https://www.instagram.com/%C3%A9t%C3%A9/"
    assert profile_url("") is None and profile_url(None) is None
