"""Which URLs may be written as links by what is published (the site, the report, the CSVs):
`safe_url` is the one gate (pure).

A URL that comes with the data (a post's `permalink`, a profile link built from a handle)
is written only if it is an https link to Instagram: `https:`, host exactly `instagram.com`
or `www.instagram.com` (any case), no user name or password, no port. Anything else
(`javascript:`, `data:`, another host, `//host`, a look-alike host) is refused: the page
shows a dash or plain text. The CSVs, LISEZMOI.txt and the report carry no URL of the data
(a column of one would go through `safe_url`, empty when refused).

The check reads the value as a browser would: the spaces and control characters a browser
strips from the ends are stripped; a control character, a space or a backslash left inside
(a browser drops tabs and newlines inside `java\\nscript:` and reads `\\` as `/`), or any
character outside printable ASCII, refuses the value: a real permalink has none.

The site's own links (`../territoires/commune-37261.html`, `#alertes`, `donnees/…`) are not
data: the templates build them from a literal path and the project's own keys (territory
ids of the reference data, category keys of the seeds, month keys, area codes, the file
names the build writes). `safe_url(value, relative=True)` is what they must satisfy, a
relative path reference (no scheme, not starting with `/`); the site tests hold every link
of a built site to it.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlsplit

INSTAGRAM_HOSTS = frozenset({"instagram.com", "www.instagram.com"})
PROFILE = "https://www.instagram.com/{}/"
_ENDS = "".join(map(chr, range(0x21)))            # what a browser strips: C0 controls, space
_PRINTABLE = re.compile(r"[!-~]+")                # printable ASCII, no space
_SCHEME = re.compile(r"[^/?#]*:")                 # a scheme (or a colon in the first segment)


def safe_url(value: Any, *, relative: bool = False) -> str | None:
    """`value` (stripped of what a browser strips) if it may be written as a link, else None.

    Allowed: https URLs of instagram.com / www.instagram.com; with `relative=True`, also a
    relative path reference (the site's own links: no scheme, no leading `/`)."""
    if not isinstance(value, str):
        return None
    text = value.strip(_ENDS)
    if not text or not _PRINTABLE.fullmatch(text) or "\\" in text:
        return None
    if relative and not text.startswith("/") and not _SCHEME.match(text):
        return text
    try:
        parts = urlsplit(text)
    except ValueError:                            # e.g. an unbalanced [ in the host
        return None
    if parts.scheme != "https" or not text[len("https:"):].startswith("//"):
        return None
    if parts.netloc.lower() not in INSTAGRAM_HOSTS:   # no user@, no :port, no look-alike
        return None
    return text


def profile_url(handle: Any) -> str | None:
    """The Instagram profile of `handle` (a handle's own characters, letters, digits, `.` and
    `_`, are kept; anything else is percent-encoded, so the link stays a path of
    www.instagram.com), through `safe_url`; None without a handle."""
    if not isinstance(handle, str) or not handle:
        return None
    return safe_url(PROFILE.format(quote(handle, safe="")))
