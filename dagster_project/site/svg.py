"""Line charts as inline SVG, drawn when the site is built (no script, crisp at any size).

`line_chart(points, ...)` takes [(month, value | None)] in month order; a None (a month the
territory was not ranked) breaks the line.
"""
from __future__ import annotations

import datetime as dt
import functools
from html import escape

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28


def _fmt(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}".replace(",", "\u202f")
    return f"{value:g}" if value == int(value) else f"{value:.1f}".replace(".", ",")


@functools.cache
def _x_texts(n: int) -> tuple[str, ...]:
    """The x coordinates of n points, as written in the SVG."""
    plot_w = WIDTH - LEFT - RIGHT
    x0, dx = (LEFT, plot_w / (n - 1)) if n > 1 else (LEFT + plot_w / 2, 0.0)
    return tuple(f"{x0 + dx * i:.1f}" for i in range(n))


def line_chart(points: list[tuple[dt.date, float | None]], title: str, *,
               invert: bool = False, integer_axis: bool = False) -> str:
    """An SVG line chart; `invert` puts the smallest value at the top (ranks)."""
    values = [v for _, v in points if v is not None]
    if not values:
        return ""
    lo, hi = min(values), max(values)
    if invert:
        lo = 1 if integer_axis else lo
    if hi == lo:
        hi = lo + 1
    n = len(points)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    x0, dx = (LEFT, plot_w / (n - 1)) if n > 1 else (LEFT + plot_w / 2, 0.0)
    y0, dy = (TOP, plot_h / (hi - lo)) if invert else (TOP + plot_h, -plot_h / (hi - lo))

    def x(i: int) -> float:
        return x0 + dx * i

    def y(v: float) -> float:
        return y0 + dy * (v - lo)

    # a territory page draws two charts of every month: the x texts are shared by every
    # chart of n points, y() is inlined
    xs = _x_texts(n)
    segments, current = [], []
    for i, (_, v) in enumerate(points):
        if v is None:
            if current:
                segments.append(current)
            current = []
        else:
            current.append(f"{xs[i]},{y0 + dy * (v - lo):.1f}")
    if current:
        segments.append(current)
    parts = [(f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'),
             f"<title>{escape(title)}</title>",
             (f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" '
             f'y2="{TOP + plot_h}"/>')]
    for v in (lo, hi):
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y(v) + 4:.1f}" '
                     f'text-anchor="end">{_fmt(v)}</text>')
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y(v):.1f}" x2="{WIDTH - RIGHT}" '
                     f'y2="{y(v):.1f}"/>')
    years = [(i, mo.year) for i, (mo, _) in enumerate(points) if mo.month == 1]
    if not years:
        years = [(0, points[0][0].year)]
    step = max(1, len(years) // 8)
    for i, year in years[::step]:
        parts.append(f'<text class="tick" x="{x(i):.1f}" y="{HEIGHT - 8}" '
                     f'text-anchor="middle">{year}</text>')
    for seg in segments:
        if len(seg) == 1:
            cx, cy = seg[0].split(",")
            parts.append(f'<circle class="dot" cx="{cx}" cy="{cy}" r="3"/>')
        else:
            parts.append(f'<polyline class="line" points="{" ".join(seg)}"/>')
    last_i = next(i for i in range(n - 1, -1, -1) if points[i][1] is not None)
    parts.append(f'<circle class="dot" cx="{x(last_i):.1f}" cy="{y(points[last_i][1]):.1f}" r="3.5"/>')
    parts.append("</svg>")
    return "".join(parts)
