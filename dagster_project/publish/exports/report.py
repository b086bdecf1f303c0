"""Monthly HTML report for journalists: one self-contained French page.

`render_report(warehouse, month, exports_dir) -> Path` writes
`<exports_dir>/<YYYY-MM>/rapport.html`: inline CSS, charts embedded as base64 PNG data
URIs, no script and no external resource, so it opens offline and can be mailed as is.

`export_month` replaces the whole month folder, so call `render_report` after it.
"""
from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import jinja2

from dagster_project.files import write_bytes_atomically
from dagster_project.months import month_key
from dagster_project.publish.exports.charts import render_top10_png
from dagster_project.publish.exports.month_data import MonthData, connect, read_month, read_rankings
from dagster_project.publish.exports.texts import (
    ALERT_WORDING,
    DEMO_NOTICE,
    SOURCE_WORDING,
    count_word,
    top_n_text,
    weights_text,
)
from dagster_project.publish.formatting import STABLE, first_of_month, month_label_fr
from dagster_project.publish.templating import environment

TEMPLATES = Path(__file__).with_name("templates")
MOVERS_LIMIT = 10
NEW_ENTRIES_LIMIT = 25


def _env() -> jinja2.Environment:
    return environment(TEMPLATES, move_class=_move_class)


def _move_class(label: str) -> str:
    if label.startswith("▲"):
        return "up"
    if label.startswith("▼"):
        return "down"
    if label == "nouveau":
        return "new"
    return "same" if label == STABLE else ""


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _movers(all_rows: list[dict[str, Any]]) -> dict[str, Any]:
    rises = sorted((r for r in all_rows if r.get("in_top_n") and (r.get("rank_change") or 0) > 0),
                   key=lambda r: (-r["rank_change"], r["rank"], r["category_order"] or 0))
    falls = sorted((r for r in all_rows
                    if (r.get("rank_change") or 0) < 0 and r.get("previous_rank") is not None
                    and r.get("top_n") and r["previous_rank"] <= r["top_n"]),
                   key=lambda r: (r["rank_change"], r["previous_rank"],
                                  r["category_order"] or 0))
    new = [r for r in all_rows if r.get("in_top_n") and r.get("is_new_entry")]
    first_month = bool(all_rows) and all(r.get("is_new_entry") for r in all_rows)
    return {"rises": rises[:MOVERS_LIMIT], "falls": falls[:MOVERS_LIMIT],
            "new": [] if first_month else new[:NEW_ENTRIES_LIMIT],
            "new_more": 0 if first_month else max(0, len(new) - NEW_ENTRIES_LIMIT),
            "first_month": first_month}


def build_context(warehouse: Path, month: dt.date) -> dict[str, Any]:
    month = first_of_month(month)
    data: MonthData = read_month(Path(warehouse), month)
    with connect(warehouse) as con:
        all_rows = read_rankings(con, month, top_only=False)
    sections = []
    for cat in data.categories:
        key = cat["category"]
        rows = data.rankings.get(key, [])
        demo = any(r["is_demo"] for r in rows)
        png = render_top10_png([r for r in rows if r["rank"] <= 10], cat["label"], month,
                               demo=demo, provisional=data.provisional)
        sections.append({
            "key": key, "label": cat["label"], "top_n": cat.get("top_n"), "rows": rows,
            "ranked": data.ranked_counts.get(key, 0), "demo": demo,
            "chart": _data_uri(png), "png": png,
            "chart_alt": (f"Top 10 {cat['label']} — {month_label_fr(month)} : "
                          + ", ".join(f"{r['rank']}. {r['territory_name']}"
                                      for r in rows[:10])) if rows else
                         f"{cat['label']} : aucun compte classé",
        })
    return {
        "month": month, "month_key": month_key(month), "month_label": month_label_fr(month),
        "data": data, "sections": sections, "movers": _movers(all_rows),
        "alerts": data.alerts, "alert_wording": ALERT_WORDING,
        "demo_notice": DEMO_NOTICE, "weights": weights_text(),
        "kpi_count": count_word(len(weights_text())),
        "top_n": top_n_text(data.categories, "par catégorie"),
        "sources": [SOURCE_WORDING.get(s, s) for s in (data.sources or ["graph_api"])],
        "reference_data": data.reference_data,
        "generated_at": dt.datetime.now(dt.UTC),
    }


def render_report(warehouse: Path, month: dt.date, exports_dir: Path) -> Path:
    """Write `<exports_dir>/<YYYY-MM>/rapport.html` and the Top 10 charts
    `top10_<category>.png` beside it (each atomically); return the report's path."""
    context = build_context(Path(warehouse), month)
    html = _env().get_template("rapport.html.j2").render(**context)
    out_dir = Path(exports_dir) / context["month_key"]
    out_dir.mkdir(parents=True, exist_ok=True)
    for section in context["sections"]:
        write_bytes_atomically(out_dir / f"top10_{section['key']}.png", section["png"])
    out = out_dir / "rapport.html"
    write_bytes_atomically(out, html.encode("utf-8"))
    return out
