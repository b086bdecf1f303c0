"""Reading a month from the warehouse: categories, rankings, alerts, snapshot dates,
sources and the reference vintage (read-only: one short connection per call, or the
caller's open connection)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.publish.exports.texts import reference_data
from dagster_project.publish.formatting import first_of_month, territory_code, utc
from dagster_project.warehouse import connect as _connect


def connect(warehouse: Path):
    """Read-only connection to an existing warehouse, closed on exit (never keep one
    across calls)."""
    return _connect(Path(warehouse), read_only=True)


def _dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def read_categories(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    return _dicts(con.execute("""select category, label, top_n, sort_order
                                 from marts.dim_categories order by sort_order, category"""))


def read_rankings(con: duckdb.DuckDBPyConnection, month: dt.date,
                  category: str | None = None, top_only: bool = True,
                  max_rank: int | None = None) -> list[dict[str, Any]]:
    """Ranked rows of a month (Top N only by default), with the territory code."""
    return _rankings(con, [month], category, top_only, max_rank)


def _rankings(con: duckdb.DuckDBPyConnection, months: list[dt.date],
              category: str | None = None, top_only: bool = True,
              max_rank: int | None = None) -> list[dict[str, Any]]:
    """Ranked rows of `months`, by month, category order and rank."""
    where = ["list_contains($months, r.month)"]
    params: dict[str, Any] = {"months": months}
    if category is not None:
        where.append("r.category = $category")
        params["category"] = category
    if top_only:
        where.append("r.in_top_n")
    if max_rank is not None:
        where.append("r.rank <= $max_rank")
        params["max_rank"] = max_rank
    in_force = territories_in_force("r.month")
    sql = f"""
        select r.*, t.code as territory_code, c.label as category_label,
               c.sort_order as category_order
        from marts.fct_monthly_rankings r
        left join marts.dim_territories t on t.territory_id = r.territory_id{in_force}
        left join marts.dim_categories c on c.category = r.category
        where {' and '.join(where)}
        order by r.month, c.sort_order, r.category, r.rank
    """
    rows = _dicts(con.execute(sql, params))
    for row in rows:
        row["code"] = territory_code(row["territory_id"], row.get("territory_code"))
        row["snapshot_at"] = utc(row["snapshot_at"])
    return rows


def _alerts(con: duckdb.DuckDBPyConnection, months: list[dt.date]) -> list[dict[str, Any]]:
    in_force = territories_in_force("a.month")
    sql = f"""
        select a.month, a.territory_id, coalesce(a.territory_name, t.name) as territory_name,
               coalesce(a.category, t.category) as category,
               c.label as category_label, t.code as territory_code, a.handle, a.alert,
               a.detail_fr, a.last_ranked_month, a.last_rank,
               coalesce(a.is_demo, false) as is_demo
        from marts.account_alerts a
        left join marts.dim_territories t on t.territory_id = a.territory_id{in_force}
        left join marts.dim_categories c on c.category = coalesce(a.category, t.category)
        where list_contains($months, a.month)
        order by a.month, c.sort_order nulls last, territory_name, a.territory_id, a.alert,
                 a.handle
    """
    rows = _dicts(con.execute(sql, {"months": months}))
    for row in rows:
        row["code"] = territory_code(row["territory_id"], row.get("territory_code"))
    return rows


@dataclass
class MonthData:
    """Everything the exports of one month need, read in one short connection."""
    month: dt.date
    categories: list[dict[str, Any]]
    rankings: dict[str, list[dict[str, Any]]]   # category → Top N rows by rank
    ranked_counts: dict[str, int]               # category → ranked accounts (all ranks)
    alerts: list[dict[str, Any]]
    snapshot_min: dt.datetime | None
    snapshot_max: dt.datetime | None
    provisional: bool
    sources: list[str]
    vintage: int | None = None            # reference vintage the month was ranked with
    package_version: str | None = None

    @property
    def reference_data(self) -> str:
        return reference_data(self.vintage, self.package_version)

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [r for c in self.categories for r in self.rankings[c["category"]]]

    @property
    def demo_rows(self) -> int:
        return sum(bool(r["is_demo"]) for r in self.rows) + sum(
            bool(a["is_demo"]) for a in self.alerts)

    @property
    def is_demo(self) -> bool:
        return self.demo_rows > 0

    @property
    def demo_categories(self) -> list[str]:
        return [c["label"] for c in self.categories
                if any(r["is_demo"] for r in self.rankings[c["category"]])]

    @property
    def exported_rows(self) -> int:
        return len(self.rows) + len(self.alerts)


def read_month(warehouse: Path | duckdb.DuckDBPyConnection, month: dt.date) -> MonthData:
    """A month's export data, from a warehouse file (one short connection) or through an
    open connection."""
    month = first_of_month(month)
    if not isinstance(warehouse, duckdb.DuckDBPyConnection):
        with connect(warehouse) as con:
            return read_months(con, [month])[month]
    return read_months(warehouse, [month])[month]


def read_months(con: duckdb.DuckDBPyConnection, months: list[dt.date]) -> dict[dt.date, MonthData]:
    """The export data of many months through an open connection, each table read once
    (a backfill exports a hundred months)."""
    months = sorted({first_of_month(mo) for mo in months})
    params = {"months": months}
    top: dict[dt.date, list[dict[str, Any]]] = {mo: [] for mo in months}
    for row in _rankings(con, months, top_only=True):
        top[first_of_month(row["month"])].append(row)
    alerts: dict[dt.date, list[dict[str, Any]]] = {mo: [] for mo in months}
    for row in _alerts(con, months):
        alerts[first_of_month(row.pop("month"))].append(row)
    counts: dict[dt.date, dict[str, int]] = {mo: {} for mo in months}
    for mo, category, n in con.execute(
            """select month, category, count(*) from marts.fct_monthly_rankings
               where list_contains($months, month) group by month, category""",
            params).fetchall():
        counts[first_of_month(mo)][category] = int(n)
    snapshots = {first_of_month(r[0]): r[1:] for r in con.execute(
        """select month, min(snapshot_at), max(snapshot_at), coalesce(bool_or(is_provisional), false),
                  list(distinct source order by source) filter (where source is not null)
           from marts.fct_monthly_rankings where list_contains($months, month)
           group by month""", params).fetchall()}
    vintages = {first_of_month(r[0]): r[1:] for r in con.execute(
        """select m.month, max(t.vintage), max(t.package_version)
           from (select unnest($months) as month) m
           join marts.dim_territories t
             on m.month between t.valid_from and coalesce(t.valid_to, date '9999-12-01')
           group by m.month""", params).fetchall()}
    known = read_categories(con)
    out = {}
    for mo in months:
        categories = [dict(c) for c in known]
        by_cat: dict[str, list[dict[str, Any]]] = {c["category"]: [] for c in categories}
        for row in top[mo]:
            by_cat.setdefault(row["category"], []).append(row)
        for extra in sorted(set(by_cat) - {c["category"] for c in categories}):
            # a category missing from dim_categories
            categories.append({"category": extra, "label": extra, "top_n": None,
                               "sort_order": 10_000})
        snap_min, snap_max, provisional, sources = snapshots.get(mo, (None, None, False, None))
        vintage, version = vintages.get(mo, (None, None))
        out[mo] = MonthData(month=mo, categories=categories, rankings=by_cat,
                            ranked_counts=counts[mo], alerts=alerts[mo],
                            snapshot_min=utc(snap_min), snapshot_max=utc(snap_max),
                            provisional=bool(provisional), sources=sources or [],
                            vintage=vintage, package_version=version)
    return out


def months_with_data(warehouse: Path, months: list[dt.date]) -> list[dt.date]:
    """The months of `months` that have rankings or alerts (the others cannot be exported)."""
    if not months:
        return []
    with connect(warehouse) as con:
        found = {first_of_month(r[0]) for r in con.execute(
            """select distinct month from marts.fct_monthly_rankings where month between ? and ?
               union select distinct month from marts.account_alerts where month between ? and ?""",
            [min(months), max(months)] * 2).fetchall()}
    return [mo for mo in months if first_of_month(mo) in found]


def territories_in_force(month_expr: str) -> str:
    """SQL join condition (alias t) selecting the dim_territories row in force in the month."""
    return (f" and {month_expr} between t.valid_from "
            "and coalesce(t.valid_to, date '9999-12-01')")