"""Charts: 1200×675 PNGs that are not blank, with French titles and the demo warning."""
from __future__ import annotations

import datetime as dt
import struct
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from dagster_project.publish.exports import territory_chart, top10_chart
from dagster_project.publish.exports.charts import build_territory_figure, build_top10_figure
from dagster_project.publish.exports.month_data import connect, read_rankings

CATEGORIES = ["region", "departement", "metropole", "communaute_agglomeration",
              "communaute_communes", "grande_ville", "ville_moyenne", "petite_ville"]


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def assert_not_blank(path: Path) -> None:
    img = mpimg.imread(str(path))
    assert img.shape[:2] == (675, 1200)
    rgb = (img[..., :3] * 255).round().astype(np.uint8).reshape(-1, 3)
    packed = (rgb[:, 0].astype(np.uint32) << 16) | (rgb[:, 1].astype(np.uint32) << 8) | rgb[:, 2]
    distinct = np.unique(packed)
    assert len(distinct) > 100, f"only {len(distinct)} colours"
    assert (rgb.min(axis=1) < 240).mean() > 0.02, "almost nothing drawn"


def figure_texts(fig) -> str:
    parts = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        parts += [t.get_text() for t in ax.texts]
        parts += [t.get_text() for t in ax.get_yticklabels()]
    return "\n".join(parts)


@pytest.mark.parametrize("category", ["departement", "petite_ville", "grande_ville"])
def test_top10_chart_png(warehouse, july, tmp_path, category):
    out = top10_chart(warehouse, july, category, tmp_path / "charts" / f"{category}.png")
    assert out == tmp_path / "charts" / f"{category}.png" and out.is_file()
    assert png_size(out) == (1200, 675)
    assert_not_blank(out)
    assert [p.name for p in out.parent.iterdir()] == [out.name]      # no temp file left


def test_top10_chart_content(warehouse, july):
    with connect(warehouse) as con:
        rows = read_rankings(con, july, category="grande_ville", top_only=False, max_rank=10)
        demo_rows = read_rankings(con, july, category="petite_ville", max_rank=10)
    fig = build_top10_figure(rows, "Grandes villes", july)
    text = figure_texts(fig)
    assert "Grandes villes — juillet 2021" in text
    assert len(rows) == 10 and all(r["territory_name"] in text for r in rows)
    assert "données simulées" not in text
    assert any(m in text for m in ("▲", "▼", "stable", "nouveau"))
    fig = build_top10_figure(demo_rows, "Petites villes", july, demo=True, provisional=True)
    text = figure_texts(fig)
    assert "données simulées" in text and "DONNÉES SIMULÉES" in text
    assert "provisoire" in text
    assert "Petites villes — juillet 2021" in text


def test_top10_chart_uses_dejavu(warehouse, july):
    with connect(warehouse) as con:
        rows = read_rankings(con, july, category="departement", max_rank=10)
    fig = build_top10_figure(rows, "Départements", july)
    fams = {t.get_fontfamily()[0] for ax in fig.axes for t in ax.texts}
    assert fams == {"DejaVu Sans"}
    assert "▲" in figure_texts(fig) or "▼" in figure_texts(fig)


def test_top10_chart_rejects_unknown_category(warehouse, july, tmp_path):
    with pytest.raises(ValueError, match="departement"):
        top10_chart(warehouse, july, "canton", tmp_path / "x.png")


def test_top10_chart_empty_month(warehouse, tmp_path):
    out = top10_chart(warehouse, dt.date(2019, 1, 1), "region", tmp_path / "empty.png")
    assert png_size(out) == (1200, 675)


@pytest.mark.parametrize("territory_id", ["departement:32", "commune:04116", "departement:17",
                                          "epci:200043123"])
def test_territory_chart_png(warehouse, tmp_path, territory_id):
    out = territory_chart(warehouse, territory_id, tmp_path / f"{territory_id}.png")
    assert png_size(out) == (1200, 675)
    if territory_id != "epci:200043123":          # never ranked, no snapshot: a message only
        assert_not_blank(out)


def test_territory_chart_content():
    series = [{"month": dt.date(2021, 6, 1), "followers": 15000, "rank": 4, "top_n": 50},
              {"month": dt.date(2021, 7, 1), "followers": 15012, "rank": 1, "top_n": 50}]
    fig = build_territory_figure("Gers", "Départements · @gersledepartement", series,
                                 demo=True)
    text = figure_texts(fig)
    assert "Gers" in text and "données simulées" in text and "limite du Top 50" in text
    assert len(fig.axes) == 2
    ax_rank = fig.axes[1]
    assert ax_rank.get_ylim()[0] > ax_rank.get_ylim()[1], "rank axis is inverted (1 on top)"


def test_territory_chart_unknown(warehouse, tmp_path):
    with pytest.raises(ValueError, match="unknown territory"):
        territory_chart(warehouse, "commune:00000", tmp_path / "x.png")
