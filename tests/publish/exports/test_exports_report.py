"""The monthly HTML report: self-contained, French, 8 sections, banners; rendered in Chromium."""
from __future__ import annotations

import base64
import html
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from dagster_project.publish.exports import export_month, render_report

CATEGORIES = ["region", "departement", "metropole", "communaute_agglomeration",
              "communaute_communes", "grande_ville", "ville_moyenne", "petite_ville"]
DEMO_NOTICE = "DONNÉES SIMULÉES (démo) : ces chiffres ne décrivent pas les comptes réels"
CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(b)), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed: apt-get install -y chromium")


class Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def parse(text: str) -> list[tuple[str, dict[str, str | None]]]:
    c = Collector()
    c.feed(text)
    return c.tags


@pytest.fixture(scope="module")
def report(warehouse, july, tmp_path_factory) -> Path:
    exports = tmp_path_factory.mktemp("report")
    export_month(warehouse, july, exports)
    return render_report(warehouse, july, exports)


def test_report_location_and_sections(report):
    assert report.name == "rapport.html" and report.parent.name == "2021-07"
    assert (report.parent / "departement.csv").is_file()      # next to the CSVs
    text = report.read_text(encoding="utf-8")
    tags = parse(text)
    ids = [a.get("id") for t, a in tags if t == "section"]
    assert ids[:8] == CATEGORIES
    assert {"mouvements", "alertes"} <= set(ids)
    assert '<html lang="fr">' in text
    assert "Classements Instagram des collectivités — juillet 2021" in text


def test_report_is_self_contained(report):
    text = report.read_text(encoding="utf-8")
    tags = parse(text)
    assert not [t for t, _a in tags if t in ("script", "link", "iframe", "object", "embed")]
    imgs = [a for t, a in tags if t == "img"]
    assert len(imgs) == 8
    for a in imgs:
        assert a["src"].startswith("data:image/png;base64,")
        png = base64.b64decode(a["src"].split(",", 1)[1])
        assert struct.unpack(">II", png[16:24]) == (1200, 675)
        assert a.get("alt")
    for _t, a in tags:
        for attr in ("src", "href", "srcset", "poster", "data"):
            v = a.get(attr) or ""
            assert not re.match(r"(https?:)?//", v), (attr, v)
    assert "url(" not in text and "@import" not in text


def test_report_content(report, warehouse, july):
    text = report.read_text(encoding="utf-8")
    assert DEMO_NOTICE in text and 'id="avertissement-demo"' in text
    assert "avertissement-provisoire" not in text
    # escaped, never live markup
    assert html.escape('=HYPERLINK("x")') in text or "=HYPERLINK(&#34;x&#34;)" in text
    assert "<script" not in text
    for name in ("Ariège", "Gers", "Méailles", "+33 Ville", "-Tiret"):
        assert name in text
    assert "@gersledepartement" in text
    # movers and alerts
    section = text[text.index('id="mouvements"'):text.index('id="alertes"')]
    assert "Plus fortes progressions" in section and "Plus fortes baisses" in section
    assert "Charente-Maritime" in section                    # the new entry
    alerts = text[text.index('<section id="alertes"'):]
    for wording in ("compte indisponible", "aucun relevé", "CC de la Ténarèze",
                    "Metz Métropole", "juin 2021"):
        assert wording in alerts
    assert "Licence Ouverte 2.0" in text and "@etalab/decoupage-administratif 6.0.0" in text


def test_report_banners_real_provisional(real_provisional_warehouse, july, tmp_path):
    out = render_report(real_provisional_warehouse, july, tmp_path)
    text = out.read_text(encoding="utf-8")
    assert 'id="avertissement-provisoire"' in text and "Classement provisoire" in text
    assert DEMO_NOTICE not in text and "avertissement-demo" not in text


def test_first_month_has_no_movers(warehouse, june, tmp_path):
    text = render_report(warehouse, june, tmp_path).read_text(encoding="utf-8")
    assert "Premier mois classé" in text


def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
           "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",   # offline
           f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=90)


@needs_chromium
def test_report_in_chromium(report, tmp_path):
    proc = chromium(["--dump-dom", report.as_uri()], tmp_path / "profile-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    for cat in CATEGORIES:
        assert f'<section id="{cat}">' in dom, cat
    assert DEMO_NOTICE in dom
    assert dom.count("data:image/png;base64,") == 8

    shot = tmp_path / "rapport.png"
    proc = chromium([f"--screenshot={shot}", "--window-size=1280,4000", report.as_uri()],
                    tmp_path / "profile-shot")
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    head = shot.read_bytes()[:24]
    assert struct.unpack(">II", head[16:24]) == (1280, 4000)
    img = mpimg.imread(str(shot))
    rgb = (img[..., :3] * 255).round().astype(np.uint32)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    assert len(np.unique(packed)) > 500, "screenshot looks blank"
    # the demo banner (red on pink) is drawn near the top of the page
    top = img[:400, :, :3]
    reddish = (top[..., 0] > 0.6) & (top[..., 1] < 0.3) & (top[..., 2] < 0.3)
    assert reddish.sum() > 200
