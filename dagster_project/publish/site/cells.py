"""The cells of the big tables (ranking pages, territory histories), built as strings: a Jinja
macro call per row cost more than the rest of the row on pages of 30 000 rows (pure)."""
from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

from dagster_project.months import month_key
from dagster_project.publish.exports.texts import HIDDEN
from dagster_project.publish.formatting import (
    evolution,
    fr_int,
    fr_number,
    fr_pct,
    month_label_fr,
    signed,
)
from dagster_project.publish.site.data import slug

_TOP, _BADGE = ' class="top"', ' <span class="badge">provisoire</span>'


def move_class(row: dict[str, Any]) -> str:
    if row.get("is_new_entry"):
        return "new"
    change = row.get("rank_change")
    return "" if not change else ("up" if change > 0 else "down")


def move_cell(row: dict[str, Any]) -> Markup:
    """The `évolution` cell of a ranking row (a filter: a Jinja macro call per row cost more
    than the rest of the row on pages of 30 000 rows)."""
    change = row.get("rank_change")
    sort_value = "" if row.get("is_new_entry") or change is None else change
    text = evolution(change, row.get("is_new_entry")) or "—"
    return Markup(f'<td class="move {move_class(row)}" data-v="{sort_value}">{escape(text)}</td>')


def local_move_cell(row: dict[str, Any], kind: str) -> Markup:
    """The movement of a row's rank in its département or région (new there when it has
    no change: not ranked in that area the month before)."""
    change = row.get(f"rank_in_{kind}_change")
    return move_cell({"rank_change": change, "is_new_entry": change is None})


# likes hidden on every post of the window: no engagement rate (sorted last, like "—")
_HIDDEN_CELL = (f'<td class="n hidden" data-v="" title="mentions J\'aime masquées par le '
                f'compte">{HIDDEN}</td>')


def _kpi_cells(r: dict[str, Any], score_decimals: int) -> str:
    """Score, followers, growth, engagement, posts a day, reach: the cells every table of
    ranked rows ends with."""
    return (f'<td class="n">{fr_number(r["score"], score_decimals)}</td>'
            f'<td class="n">{fr_int(r["followers"])}</td>'
            f'<td class="n">{signed(r["followers_growth"])}</td>'
            + (_HIDDEN_CELL if r.get("engagement_hidden")
               else f'<td class="n">{fr_pct(r["engagement_rate"])}</td>') +
            f'<td class="n">{fr_number(r["posts_per_day"], 2)}</td>'
            f'<td class="n">{fr_pct(r["reach"])}</td>')


def ranking_rows(rows: list[dict[str, Any]]) -> Markup:
    """The rows of a full ranking page, one `<tr>` per line (pages of 30 000 rows: plain
    Python formatting, the same bytes the template's loop wrote, at a third of its cost)."""
    return Markup("".join(
        f'<tr{_TOP if r["in_top_n"] else ""} data-r="{escape(r["code_region"] or "")}" '
        f'data-d="{escape(r["code_departement"] or "")}"><td class="n">{r["rank"]}</td>{move_cell(r)}'
        f'<td><a href="../../territoires/{escape(slug(r["territory_id"]))}.html">'
        f'{escape(r["territory_name"])}</a></td><td class="handle">@{escape(r["handle"])}</td>'
        f'{_kpi_cells(r, score_decimals=2)}</tr>\n' for r in rows))


def history_rows(rows: list[dict[str, Any]], counts: dict[tuple, int]) -> Markup:
    """The rows of a territory page's 12-month table, newest first (as `ranking_rows`)."""
    return Markup("".join(
        f'<tr><th scope="row"><a href="../classements/{month_key(r["month"])}/'
        f'{escape(r["category"])}.html">{escape(month_label_fr(r["month"]))}</a>'
        f'{_BADGE if r["is_provisional"] else ""}</th>'
        f'<td class="n">{r["rank"]} / {counts[(r["month"], r["category"])]}</td>{move_cell(r)}'
        f'{_kpi_cells(r, score_decimals=1)}</tr>\n' for r in rows))
