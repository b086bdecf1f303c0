"""What the site shows, read from the published warehouse in one short read-only connection."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..warehouse import connect

RANKING_COLUMNS = ("month", "category", "rank", "territory_id", "territory_name", "handle",
                   "score", "engagement_rate", "reach", "posts_per_day", "followers",
                   "followers_growth", "follower_ratio", "rank_change", "is_new_entry",
                   "in_top_n", "is_demo", "is_provisional")
POST_COLUMNS = ("month", "category", "post_rank", "territory_id", "handle", "media_id",
                "posted_at", "media_type", "like_count", "comments_count", "interactions",
                "engagement", "permalink", "is_demo")
ALERT_COLUMNS = ("month", "territory_id", "handle", "alert", "detail")


def slug(territory_id: str) -> str:
    """'commune:37261' → 'commune-37261' (a file name on every system)."""
    return territory_id.replace(":", "-")


@dataclass
class SiteData:
    categories: list[dict[str, Any]]
    months: list[dt.date]                       # every ranked month, ascending
    provisional: set[dt.date]
    is_demo: bool
    # month → category → ranked rows by rank (only the months being rendered)
    rankings: dict[dt.date, dict[str, list[dict[str, Any]]]]
    # territory_id → rows of every month, ascending (only the territories being rendered)
    history: dict[str, list[dict[str, Any]]]
    ranked_counts: dict[tuple[dt.date, str], int]
    posts: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    names: dict[str, str]                       # territory_id → latest name
    search: list[tuple[str, str, str, str]] = field(default_factory=list)

    @property
    def latest(self) -> dt.date | None:
        """The latest complete month (the latest month when none is complete)."""
        complete = [mo for mo in self.months if mo not in self.provisional]
        return (complete or self.months or [None])[-1]


def _dicts(cur, columns) -> list[dict[str, Any]]:
    return [dict(zip(columns, row)) for row in cur.fetchall()]


def _table_exists(con, schema: str, name: str) -> bool:
    return bool(con.execute("""select count(*) from information_schema.tables
                               where table_schema = ? and table_name = ?""",
                            [schema, name]).fetchone()[0])


def read_site_data(warehouse: Path, months: list[dt.date] | None) -> SiteData:
    """Read what the pages of `months` (all when None) need.

    Territory histories are read for the territories ranked in those months; the index,
    the search and the month list always cover the whole warehouse.
    """
    with connect(warehouse, read_only=True) as con:
        categories = [dict(zip(("category", "label", "top_n", "sort_order"), r)) for r in
                      con.execute("""select category, label, top_n, sort_order
                                     from marts.dim_categories order by sort_order""").fetchall()]
        month_rows = con.execute("""select month, bool_or(is_provisional), bool_or(is_demo)
                                    from marts.fct_monthly_rankings group by month
                                    order by month""").fetchall()
        all_months = [r[0] for r in month_rows]
        provisional = {r[0] for r in month_rows if r[1]}
        is_demo = any(r[2] for r in month_rows)
        wanted = all_months if months is None else sorted(set(months) & set(all_months))
        latest_two = [mo for mo in all_months if mo not in provisional][-1:] + sorted(provisional)
        before = [all_months[i - 1] for i, mo in enumerate(all_months) if mo in wanted and i > 0]
        rendered = sorted(set(wanted) | set(latest_two) | set(before))
        cols = ", ".join(RANKING_COLUMNS)
        rows = _dicts(con.execute(f"""select {cols} from marts.fct_monthly_rankings
                                      where month in (select unnest(?::date[]))
                                      order by month, category, rank""", [rendered]),
                      RANKING_COLUMNS)
        rankings: dict[dt.date, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        for row in rows:
            rankings[row["month"]][row["category"]].append(row)
        counts = {(mo, c): n for mo, c, n in con.execute(
            """select month, category, count(*) from marts.fct_monthly_rankings
               group by all""").fetchall()}
        hist: dict[str, list] = defaultdict(list)
        for row in _dicts(con.execute(f"""
                select {cols} from marts.fct_monthly_rankings
                where territory_id in (select territory_id from marts.fct_monthly_rankings
                                       where month in (select unnest(?::date[])))
                order by territory_id, month""", [wanted]), RANKING_COLUMNS):
            hist[row["territory_id"]].append(row)
        posts = []
        if _table_exists(con, "marts", "fct_top_posts"):
            posts = _dicts(con.execute(f"""select {', '.join(POST_COLUMNS)}
                                          from marts.fct_top_posts
                                          order by month desc, category, post_rank"""),
                           POST_COLUMNS)
        alerts = _dicts(con.execute(f"""select {', '.join(ALERT_COLUMNS)}
                                       from marts.account_alerts
                                       order by month desc, territory_id, alert"""),
                        ALERT_COLUMNS)
        latest = con.execute("""select territory_id, arg_max(territory_name, month),
                                       arg_max(category, month)
                                from marts.fct_monthly_rankings group by territory_id
                                order by 2, 1""").fetchall()
    labels = {c["category"]: c["label"] for c in categories}
    names = {tid: name for tid, name, _ in latest}
    search = [(name, tid.split(":", 1)[-1], slug(tid), labels.get(cat, cat))
              for tid, name, cat in latest]
    return SiteData(categories=categories, months=all_months, provisional=provisional,
                    is_demo=is_demo, rankings=rankings, history=hist, ranked_counts=counts,
                    posts=posts, alerts=alerts, names=names, search=search)
