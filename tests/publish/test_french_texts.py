"""Every text a reader sees is French: the whole demo site and a month of exports (CSV files,
report, LISEZMOI.txt) hold no English sentence. Identifiers are not sentences: handles,
file names, column and table names (in <code>), URLs and codes are left out of the check."""
from __future__ import annotations

import html
import re
from pathlib import Path

# English words that are not French words too: one of them in a published text is English
# that reached a reader (the warehouse's alert details were, before detail_fr).
ENGLISH = frozenset(["the", "of", "and", "with", "has", "have", "not", "this", "that", "from", "into", "over", "their", "its", "is", "are", "was", "were", "snapshot", "snapshots", "status", "posts", "ranked", "unranked", "error", "errors", "weights", "rescaled", "latest", "earlier", "previous", "window", "criteria", "hide", "hides", "hidden", "likes", "account", "accounts", "changed", "exist", "exists", "merged", "behind", "registry", "collected", "month", "months", "rankings", "ranking", "search", "download", "downloads", "next", "back", "home", "territory", "territories", "alert", "alerts", "none", "unknown", "followers", "growth", "reach"])
READABLE = {".html", ".csv", ".txt", ".md", ".svg"}
HIDDEN_ELEMENTS = re.compile(r"<(script|style|code|pre)\b.*?</\1>", re.DOTALL | re.IGNORECASE)
# a token glued to ., _, :, /, @, digits or = is a name, a handle, a path or a code
IDENTIFIER = re.compile(r"\S*[_@/:=.\d]\S*[A-Za-z]\S*|\S*[A-Za-z]\S*[_@/:=.\d]\S*")


def visible_text(path: Path) -> str:
    text = path.read_text("utf-8-sig", errors="replace")
    if path.suffix in (".html", ".svg"):
        text = HIDDEN_ELEMENTS.sub(" ", text)
        text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    return text


def english_words(text: str) -> list[str]:
    text = IDENTIFIER.sub(" ", text)
    return [w for w in re.findall(r"[^\W\d_]+", text) if w.lower() in ENGLISH]


def english_in(files: list[Path]) -> dict[str, list[str]]:
    found = {}
    for path in files:
        for line in visible_text(path).splitlines():
            if words := english_words(line):
                found.setdefault(str(path), []).append(f"{words}: {line.strip()[:160]}")
    return found


def test_the_word_list_finds_the_alert_details_of_the_warehouse():
    """The check catches what was published before: the warehouse's English details."""
    assert english_words("latest snapshot 2021-07-31 22:00 UTC has status not_found "
                         "(error 110: gone); not ranked") == [
        "latest", "snapshot", "has", "status", "error", "not", "ranked"]
    assert english_words("3 / 3 posts of the reference window hide their like counts") == [
        "posts", "of", "the", "window", "hide", "their"]
    assert english_words("dernière capture le 01/08/2021 à 00 h 00 : compte introuvable "
                         "(code d'erreur 110) ; non classé — @demo.posts, region.csv, "
                         "marts.account_alerts") == []


def test_no_english_in_the_site_nor_in_a_month_of_exports(demo_run):
    site = [p for p in (demo_run / "site").rglob("*") if p.suffix in READABLE]
    months = sorted(p for p in (demo_run / "exports").iterdir() if p.is_dir())
    exports = [p for p in months[-1].rglob("*") if p.suffix in READABLE]
    assert len(site) > 100 and {"alertes.csv", "rapport.html", "LISEZMOI.txt"} <= {
        p.name for p in exports}
    # the alerts are there, in French, on the site and in the exports
    alerts = visible_text(months[-1] / "alertes.csv")
    assert "dernière capture le " in alerts or "aucune capture" in alerts
    assert any("dernière capture le " in visible_text(p) or "aucune capture" in visible_text(p)
               for p in (demo_run / "site" / "territoires").glob("*.html"))
    assert english_in(site + exports) == {}
