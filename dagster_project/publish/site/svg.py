"""Line charts as inline SVG, drawn when the site is built (no script, crisp at any size).

A chart has one x position per month of its span (a territory's first to last ranked
month) and breaks its line on a month without a value. The points are computed by DuckDB,
a batch of territories at a time (`points_sql`, used by `site.data.territory_batches`), so
the Python work of a territory page does not grow with its history; `line_chart` draws the
SVG around them (axis, lowest and highest value, years). The coordinates are written with
one decimal.
"""
from __future__ import annotations

import datetime as dt
from html import escape

from dagster_project.publish.formatting import fr_int

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


def x(i: int, n: int) -> float:
    """The x of month i of n (a single month is centred)."""
    return LEFT + PLOT_W / 2 if n == 1 else LEFT + PLOT_W / (n - 1) * i


def y(v: float, lo: float, hi: float, invert: bool) -> float:
    """The y of value v on an axis from lo to hi; `invert` puts lo at the top (ranks)."""
    return (TOP + PLOT_H / (hi - lo) * (v - lo) if invert
            else TOP + PLOT_H - PLOT_H / (hi - lo) * (v - lo))


def points_sql(i: str, n: str, v: str, lo: str, hi: str, invert: bool) -> str:
    """SQL for the 'x,y' text of a point: `x` and `y` above, as DuckDB expressions."""
    x_expr = (f"case when {n} = 1 then {LEFT + PLOT_W / 2} "
              f"else {LEFT} + {PLOT_W}::double / ({n} - 1) * ({i}) end")
    scale = f"{PLOT_H}::double / (({hi}) - ({lo})) * (({v}) - ({lo}))"
    y_expr = f"{TOP} + {scale}" if invert else f"{TOP + PLOT_H} - {scale}"
    return f"printf('%.1f,%.1f', {x_expr}, {y_expr})"


def _fmt(value: float) -> str:
    if abs(value) >= 1000:
        return fr_int(round(value))
    return f"{value:g}" if value == int(value) else f"{value:.1f}".replace(".", ",")


def year_ticks(span: list[dt.date]) -> str:
    """The years under the x axis of a chart of `span` (at most about 8 labels)."""
    n = len(span)
    years = [(i, mo.year) for i, mo in enumerate(span) if mo.month == 1] or [(0, span[0].year)]
    return "".join(f'<text class="tick" x="{x(i, n):.1f}" y="{HEIGHT - 8}" '
                   f'text-anchor="middle">{year}</text>'
                   for i, year in years[::max(1, len(years) // 8)])


def line_chart(segments: list[str], lo: float, hi: float, title: str, *, invert: bool,
               years: str) -> str:
    """An SVG line chart: `segments` are the runs of consecutive months with a value, as SVG
    points ('x,y x,y …', from `points_sql`); lo and hi are the axis bounds the points were
    scaled with; `years` comes from `year_ticks`."""
    if not segments:
        return ""
    parts = [(f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
              f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'),
             f"<title>{escape(title)}</title>",
             (f'<line class="axis" x1="{LEFT}" y1="{TOP + PLOT_H}" x2="{WIDTH - RIGHT}" '
              f'y2="{TOP + PLOT_H}"/>')]
    for v in (lo, hi):
        at = y(v, lo, hi, invert)
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{at + 4:.1f}" '
                     f'text-anchor="end">{_fmt(v)}</text>')
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{at:.1f}" x2="{WIDTH - RIGHT}" '
                     f'y2="{at:.1f}"/>')
    parts.append(years)
    for seg in segments:
        if " " in seg:
            parts.append(f'<polyline class="line" points="{seg}"/>')
        else:
            cx, cy = seg.split(",")
            parts.append(f'<circle class="dot" cx="{cx}" cy="{cy}" r="3"/>')
    cx, cy = segments[-1].rsplit(" ", 1)[-1].split(",")
    parts.append(f'<circle class="dot" cx="{cx}" cy="{cy}" r="3.5"/>')
    parts.append("</svg>")
    return "".join(parts)
