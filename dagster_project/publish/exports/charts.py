"""Charts for journalists: 1200×675 px PNGs (16:9, social-media friendly), matplotlib Agg.

- `top10_chart(warehouse, month, category, out_path) -> Path`
- `territory_chart(warehouse, territory_id, out_path) -> Path`

The figures are built with the object API (`Figure` + Agg canvas), never `pyplot`, so no
global state is shared between threads or with other code. Text uses DejaVu Sans (shipped
with matplotlib), which has the ▲ ▼ glyphs. Size is exact: 12 × 6.75 in at 100 dpi, saved
without `bbox_inches="tight"`.
"""
from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from matplotlib.transforms import blended_transform_factory

from dagster_project.files import write_bytes_atomically
from dagster_project.publish.exports.month_data import connect, read_categories, read_rankings
from dagster_project.publish.formatting import (
    FR_MONTHS_SHORT,
    evolution,
    first_of_month,
    fmt_decimal,
    fr_int,
    month_label_fr,
)

WIDTH_PX, HEIGHT_PX, DPI = 1200, 675, 100
FONT = {"font.family": "DejaVu Sans", "font.sans-serif": ["DejaVu Sans"],
        "axes.unicode_minus": True}
INK, MUTED, GRID = "#1f2933", "#616e7c", "#e4e7eb"
BAR, BAR_TOP = "#3e6fb0", "#1d4e89"
UP, DOWN, SAME, NEW = "#1a7f37", "#c62828", "#616e7c", "#8250df"
DEMO = "#b42318"
MOVE_X, HANDLE_X = 0.705, 0.80      # figure x of the évolution / compte columns
SIMULATED = "données simulées (démo) — ne décrivent pas les comptes réels"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _movement_color(label: str) -> str:
    if label.startswith("▲"):
        return UP
    if label.startswith("▼"):
        return DOWN
    if label == "nouveau":
        return NEW
    return SAME


def _new_figure() -> Figure:
    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    return fig


def _watermark(fig: Figure) -> None:
    fig.text(0.5, 0.45, "DONNÉES SIMULÉES", fontsize=64, color=DEMO, alpha=0.10,
             ha="center", va="center", rotation=18, fontweight="bold", zorder=0)


def _png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    with matplotlib.rc_context(FONT):
        fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


# ---------------------------------------------------------------- Top 10

def render_top10_png(rows: list[dict[str, Any]], label: str, month: dt.date, *,
                     demo: bool = False, provisional: bool = False) -> bytes:
    """PNG bytes of a Top-10 bar chart from ranking rows (rank, territory_name, score…)."""
    return _png_bytes(build_top10_figure(rows, label, month, demo=demo,
                                         provisional=provisional))


def build_top10_figure(rows: list[dict[str, Any]], label: str, month: dt.date, *,
                       demo: bool = False, provisional: bool = False) -> Figure:
    rows = sorted(rows, key=lambda r: r["rank"])[:10]
    with matplotlib.rc_context(FONT):
        fig = _new_figure()
        fig.text(0.03, 0.935, f"{label} — {month_label_fr(month)}", fontsize=22,
                 fontweight="bold", color=INK, ha="left", va="baseline")
        sub = "Top 10 Instagram · score sur 100 · évolution depuis le mois précédent"
        if provisional:
            sub += " · classement provisoire"
        fig.text(0.03, 0.885, sub, fontsize=13, color=MUTED, ha="left", va="baseline")
        if demo:
            fig.text(0.03, 0.84, "⚠ " + SIMULATED, fontsize=13, color=DEMO, ha="left",
                     va="baseline", fontweight="bold")
            _watermark(fig)
        fig.text(0.03, 0.025, "Observatoire · méthode v1 — poids : engagement 5, portée 4, "
                 "publications/jour 3, abonnés 2, abonnés/abonnements 1", fontsize=9.5,
                 color=MUTED, ha="left")

        ax = fig.add_axes((0.27, 0.09, 0.42, 0.70))
        ax.set_facecolor("none")
        if not rows:
            ax.set_axis_off()
            ax.text(0.5, 0.5, "Aucun compte classé ce mois-ci", fontsize=18, color=MUTED,
                    ha="center", va="center", transform=ax.transAxes)
            return fig

        n = len(rows)
        ys = list(range(n))
        scores = [float(r["score"] or 0) for r in rows]
        colors = [BAR_TOP if i == 0 else BAR for i in range(n)]
        ax.barh(ys, scores, height=0.68, color=colors, zorder=2)
        ax.set_ylim(9.6 if n < 10 else n - 0.4, -0.6)
        ax.set_xlim(0, 100)
        ax.set_yticks(ys)
        ax.set_yticklabels([f"{r['rank']}.  {_short(str(r['territory_name'] or ''), 30)}"
                            for r in rows], fontsize=13, color=INK)
        ax.tick_params(axis="y", length=0, pad=8)
        ax.tick_params(axis="x", colors=MUTED, labelsize=10)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: fmt_decimal(v, 0, ",")))
        ax.grid(axis="x", color=GRID, zorder=0)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        ax.spines["bottom"].set_color(GRID)
        for y, s in zip(ys, scores):
            inside = s > 12
            ax.text(s - 1 if inside else s + 1, y, fmt_decimal(s, 1, ","), va="center",
                    ha="right" if inside else "left", fontsize=11.5, fontweight="bold",
                    color="white" if inside else INK, zorder=3)
        cols = blended_transform_factory(fig.transFigure, ax.transData)
        head_y = ax.get_ylim()[1] - 0.05
        for x, head in ((MOVE_X, "évolution"), (HANDLE_X, "compte")):
            ax.text(x, head_y, head, transform=cols, va="bottom", ha="left", fontsize=10,
                    color=MUTED)
        for y, r in zip(ys, rows):
            mv = evolution(r.get("rank_change"), r.get("is_new_entry")) or "—"
            handle = f"@{r['handle']}" if r.get("handle") else ""
            ax.text(MOVE_X, y, mv, transform=cols, va="center", ha="left",
                    fontsize=13, fontweight="bold", color=_movement_color(mv))
            ax.text(HANDLE_X, y, _short(handle, 31), transform=cols,
                    va="center", ha="left", fontsize=10.5, color=MUTED)
        return fig


def top10_chart(warehouse: Path, month: dt.date, category: str, out_path: Path) -> Path:
    """Top-10 scores of a category for a month as a 1200×675 PNG at `out_path`."""
    month = first_of_month(month)
    with connect(warehouse) as con:
        cats = {c["category"]: c for c in read_categories(con)}
        if category not in cats:
            raise ValueError(f"unknown category {category!r}: valid categories are "
                             f"{', '.join(cats)}")
        rows = read_rankings(con, month, category=category, top_only=False, max_rank=10)
        flags = con.execute(
            """select coalesce(bool_or(is_demo), false), coalesce(bool_or(is_provisional), false)
               from marts.fct_monthly_rankings where month = ? and category = ?""",
            [month, category]).fetchone()
    png = render_top10_png(rows, cats[category]["label"], month, demo=bool(flags[0]),
                           provisional=bool(flags[1]))
    return write_bytes_atomically(out_path, png)


# ---------------------------------------------------------------- one territory over time

def _month_formatter(value: float, _pos: Any) -> str:
    d = matplotlib.dates.num2date(value)
    return f"{FR_MONTHS_SHORT[d.month - 1]}\n{d.year}"


def render_territory_png(name: str, subtitle: str, series: list[dict[str, Any]], *,
                         demo: bool = False) -> bytes:
    """Two panels: followers (top) and rank with the Top N line (bottom), by month."""
    return _png_bytes(build_territory_figure(name, subtitle, series, demo=demo))


def build_territory_figure(name: str, subtitle: str, series: list[dict[str, Any]], *,
                           demo: bool = False) -> Figure:
    import matplotlib.dates as mdates

    with matplotlib.rc_context(FONT):
        fig = _new_figure()
        fig.text(0.04, 0.935, name, fontsize=22, fontweight="bold", color=INK)
        fig.text(0.04, 0.885, subtitle, fontsize=13, color=MUTED)
        if demo:
            fig.text(0.04, 0.84, "⚠ " + SIMULATED, fontsize=13, color=DEMO, ha="left",
                     fontweight="bold")
            _watermark(fig)
        ax_f = fig.add_axes((0.09, 0.47, 0.86, 0.33))
        ax_r = fig.add_axes((0.09, 0.11, 0.86, 0.30), sharex=ax_f)
        for ax in (ax_f, ax_r):
            ax.set_facecolor("none")
            ax.grid(color=GRID, zorder=0)
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
            for side in ("left", "bottom"):
                ax.spines[side].set_color(GRID)
            ax.tick_params(colors=MUTED, labelsize=10)
        if not series:
            ax_f.set_axis_off()
            ax_r.set_axis_off()
            fig.text(0.5, 0.45, "Aucun relevé exploitable pour ce territoire", fontsize=18,
                     color=MUTED, ha="center", va="center")
            return fig

        months = [dt.datetime.combine(s["month"], dt.time()) for s in series]
        followers = [s.get("followers") for s in series]
        fx = [m for m, f in zip(months, followers) if f is not None]
        fy = [f for f in followers if f is not None]
        ax_f.plot(fx, fy, color=BAR, linewidth=2.4, marker="o" if len(fx) < 40 else None,
                  markersize=4, zorder=3)
        if fy:
            ax_f.fill_between(fx, fy, min(fy) * 0.98, color=BAR, alpha=0.08, zorder=2)
        if fy:
            ax_f.annotate(fr_int(round(fy[-1])), (fx[-1], fy[-1]), textcoords="offset points",
                          xytext=(6, 4), ha="left", fontsize=10.5, fontweight="bold",
                          color=BAR)
        ax_f.set_ylabel("abonnés", color=MUTED, fontsize=11)
        ax_f.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: fr_int(round(v))))
        ax_f.tick_params(labelbottom=False)

        _plot_ranks(ax_r, months, series)
        ax_r.set_ylabel("rang (1 = premier)", color=MUTED, fontsize=11)
        span = (months[-1].year - months[0].year) * 12 + months[-1].month - months[0].month + 1
        step = next((k for k in (1, 2, 3, 6, 12, 24, 60) if span / k <= 10), 120)
        if step >= 12:
            locator = mdates.YearLocator(step // 12)
        else:
            locator = mdates.MonthLocator(bymonth=range(1, 13, step), bymonthday=1)
        ax_r.xaxis.set_major_locator(locator)
        ax_r.xaxis.set_major_formatter(FuncFormatter(_month_formatter))
        pad = dt.timedelta(days=20 if span > 1 else 45)
        ax_r.set_xlim(months[0] - pad, months[-1] + pad)
        return fig

def _plot_ranks(ax_r, months: list[dt.datetime], series: list[dict[str, Any]]) -> None:
    """The rank curve (rank 1 on top), its labels, the Top N line and the rank ticks."""
    rx = [m for m, s in zip(months, series) if s.get("rank") is not None]
    ry = [s["rank"] for s in series if s.get("rank") is not None]
    top_n = next((s["top_n"] for s in series if s.get("top_n")), None)
    if rx:
        ax_r.plot(rx, ry, color=BAR_TOP, linewidth=2.2, marker="o", markersize=4,
                  zorder=3)
        if len(rx) <= 24:
            for x, y in zip(rx, ry):
                ax_r.annotate(f"{y}", (x, y), textcoords="offset points", xytext=(0, 7),
                              ha="center", fontsize=9.5, color=BAR_TOP)
        ymax = max(max(ry), top_n or 0) + 1
        ax_r.set_ylim(ymax, 0.5)
        if top_n and top_n <= ymax:
            ax_r.axhline(top_n + 0.5, color=DOWN, linestyle="--", linewidth=1, zorder=2)
            ax_r.text(1.0, top_n + 0.5, f"limite du Top {top_n}",
                      transform=ax_r.get_yaxis_transform(), ha="right", va="bottom",
                      fontsize=9.5, color=DOWN)
    else:
        ax_r.text(0.5, 0.5, "jamais classé", fontsize=14, color=MUTED, ha="center",
                  va="center", transform=ax_r.transAxes)
    if rx:
        ytop = int(ax_r.get_ylim()[0])
        step = next((k for k in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
                     if ytop / k <= 6), 5000)
        ax_r.set_yticks(sorted({1, *range(step, ytop + 1, step)}))


def territory_chart(warehouse: Path, territory_id: str, out_path: Path) -> Path:
    """Followers and rank of one territory's account, month by month, as a 1200×675 PNG."""
    with connect(warehouse) as con:
        terr = con.execute(
            """select t.name, t.category, c.label from marts.dim_territories t
               left join marts.dim_categories c on c.category = t.category
               where t.territory_id = ?
               order by t.vintage desc
               limit 1""", [territory_id]).fetchone()
        if terr is None:
            raise ValueError(f"unknown territory {territory_id!r} (expected e.g. "
                             "'departement:32', 'commune:37261')")
        cur = con.execute(
            """select coalesce(a.month, r.month) as month,
                      coalesce(a.followers, r.followers) as followers,
                      r.rank, r.top_n, coalesce(a.handle, r.handle) as handle,
                      coalesce(a.is_demo, r.is_demo, false) as is_demo
               from (select * from marts.fct_account_monthly where territory_id = ?) a
               full outer join
                    (select * from marts.fct_monthly_rankings where territory_id = ?) r
                 on r.month = a.month
               order by 1""", [territory_id, territory_id])
        cols = [d[0] for d in cur.description]
        series = [dict(zip(cols, row)) for row in cur.fetchall()]
    name, _category, label = terr
    handles = [s["handle"] for s in series if s.get("handle")]
    subtitle = " · ".join(x for x in [label or "", f"@{handles[-1]}" if handles else "",
                                      "abonnés et rang mensuels"] if x)
    png = render_territory_png(str(name), subtitle, series,
                               demo=any(s["is_demo"] for s in series))
    return write_bytes_atomically(out_path, png)
