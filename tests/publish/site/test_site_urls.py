"""Hostile URLs in the warehouse never become links on the site (issue 43): a post's
permalink and an account's handle are rendered through `publish.urls`, anything but an
https link to Instagram shows as a dash or plain text. Fast: the templates alone."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from dagster_project.publish.site.build import _env

HOSTILE = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(document.domain)",
    " \tjavascript:alert(1)",
    "java\nscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "https://evil.example/p/phish/",
    "//evil.example",
    "https://www.instagram.com.evil.example/",
    "https://www.instagram.com@evil.example/p/x/",
    "http://www.instagram.com/p/x/",
    "https://www.instagram.com\\@evil.example/",
    "vbscript:msgbox(1)",
    "p/../../index.html",
]
GOOD = "https://www.instagram.com/p/abc/"
HREF = re.compile(r'href="([^"]*)"')


def post(permalink: str | None, rank: int = 1) -> dict:
    return {"post_rank": rank, "category": "petite_ville", "territory_id": "commune:37261",
            "handle": "ville.tours", "posted_at": dt.datetime(2021, 7, 3, 12),
            "media_product_type": "FEED", "media_type": "IMAGE", "like_count": 10,
            "comments_count": 2, "view_count": None, "engagement": 0.01,
            "month": dt.date(2021, 7, 1), "permalink": permalink}


def external_hrefs(html: str) -> list[str]:
    """Every href of `html` but the site's own relative links."""
    return [h for h in HREF.findall(html) if not re.match(r"(?:\.\./)*[a-z_]+[/.]|#", h)]


def link_cells(html: str) -> list[str]:
    """The last cell (Lien) of each row of the posts table."""
    body = html.split('<table class="posts">', 1)[1].split("<tbody>", 1)[1].split("</tbody>")[0]
    return [re.findall(r"<td>(.*?)</td>", row)[-1] for row in body.split("</tr>") if "<td" in row]


def assert_only_the_good_link(html: str) -> None:
    assert external_hrefs(html) == [GOOD]
    lowered = html.lower()
    for bad in ('href="javascript:', 'href="data:', 'href="vbscript:', "evil.example",
                'href="//', 'href=" ', 'href="http:'):
        assert bad not in lowered, bad
    cells = link_cells(html)
    assert cells[0] == f'<a href="{GOOD}" rel="noopener noreferrer external">voir</a>'
    assert cells[1:] == ["—"] * len(HOSTILE)     # a refused permalink: a dash, no link


def test_posts_table_links_only_instagram_permalinks():
    macros = _env().get_template("_macros.html.j2").module
    posts = [post(GOOD)] + [post(bad, i + 2) for i, bad in enumerate(HOSTILE)]
    html = str(macros.posts_table(posts, "../../", {"commune:37261": "Tours"}, {}))
    assert_only_the_good_link(html)


def territory_page(handle: str, permalinks: list[str | None]) -> str:
    last = {"handle": handle, "month": dt.date(2021, 7, 1), "is_provisional": False, "rank": 3,
            "score": 71.5, "followers": 1200, "category": "petite_ville",
            "territory_id": "commune:37261"}
    return _env().get_template("territory.html.j2").render(
        root="../", is_demo=False, built_at="01/08/2021 à 10:00 UTC", name="Tours",
        label="Petites villes", code="37261", last=last, last_count=40, recent=[], counts={},
        rank_chart="", followers_chart="", alerts=[], area_links=[],
        posts=[post(p, i + 1) for i, p in enumerate(permalinks)])


def test_territory_page_links_only_instagram_permalinks():
    html = territory_page("ville.tours", [GOOD, *HOSTILE])
    profile = 'href="https://www.instagram.com/ville.tours/"'
    assert profile in html
    assert_only_the_good_link(html.replace(profile, ""))


@pytest.mark.parametrize("handle", ["evil.example/#", "x/../../p/phish", "a?b=1&c", "\"><b>x"])
def test_a_strange_handle_stays_on_instagram(handle):
    """The profile link is built from the handle: whatever it holds, the link stays a path of
    www.instagram.com (characters outside a handle's are percent-encoded)."""
    html = territory_page(handle, [])
    links = [h for h in HREF.findall(html) if h.startswith("https://")]
    assert len(links) == 1 and links[0].startswith("https://www.instagram.com/")
    assert "/" not in links[0].removeprefix("https://www.instagram.com/").rstrip("/")
    assert "<b>" not in html
