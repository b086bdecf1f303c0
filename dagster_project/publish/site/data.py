"""What the site shows, read from the published warehouse through one read-only connection.

Memory stays flat whatever the history: the shared data (months, counts, names, top posts)
is small; a month's rankings are read one month at a time, territory histories one batch
of territories at a time, their charts drawn by DuckDB (Python gets SVG text, not series).
"""
from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb

from dagster_project.publish.exports.areas import KINDS
from dagster_project.publish.site.svg import points_sql

RANKING_COLUMNS = ("month", "category", "rank", "territory_id", "territory_name", "handle",
                   "score", "engagement_rate", "engagement_hidden", "reach", "posts_per_day", "followers",
                   "followers_growth", "follower_ratio", "rank_change", "is_new_entry",
                   "in_top_n", "is_demo", "is_provisional", "code_departement",
                   "departement_name", "code_region", "region_name", "rank_in_departement",
                   "rank_in_region", "rank_in_departement_change", "rank_in_region_change")
POST_COLUMNS = ("month", "category", "post_rank", "territory_id", "handle", "media_id",
                "posted_at", "media_type", "media_product_type", "like_count", "comments_count",
                "view_count", "interactions",
                "engagement", "permalink", "is_demo")
ALERT_COLUMNS = ("month", "territory_id", "handle", "alert", "detail_fr")
TERRITORY_ALERTS = 24          # most recent alerts shown on a territory page
TERRITORY_BATCH = 5000         # territories read at once (each batch scans the rankings twice)
RECENT_MONTHS = 12             # months shown in full on a territory page


def slug(territory_id: str) -> str:
    """'commune:37261' → 'commune-37261' (a file name on every system)."""
    return territory_id.replace(":", "-")


@dataclass
class SiteData:
    """What every page may need: small whatever the number of months."""
    categories: list[dict[str, Any]]
    months: list[dt.date]                       # every ranked month, ascending
    provisional: set[dt.date]
    is_demo: bool
    ranked_counts: dict[tuple[dt.date, str], int]
    posts: list[dict[str, Any]]                 # top posts, 10 per month and category
    names: dict[str, str]                       # territory_id → latest name
    search: list[tuple[str, str, str, str]] = field(default_factory=list)   # name, code, page, label
    # the départements and régions with a page: those with a territory ranked in `latest`
    areas: list[tuple[str, str, str, str | None]] = field(default_factory=list)  # kind, code, name, région

    @functools.cached_property
    def area_codes(self) -> set[tuple[str, str]]:
        return {(kind, code) for kind, code, _, _ in self.areas}

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


def read_site_data(con: duckdb.DuckDBPyConnection) -> SiteData:
    """The shared data: categories, months, counts, names, search index, top posts."""
    categories = [dict(zip(("category", "label", "top_n", "sort_order"), r)) for r in
                  con.execute("""select category, label, top_n, sort_order
                                 from marts.dim_categories order by sort_order""").fetchall()]
    month_rows = con.execute("""select month, bool_or(is_provisional), bool_or(is_demo)
                                from marts.fct_monthly_rankings group by month
                                order by month""").fetchall()
    counts = {(mo, c): n for mo, c, n in con.execute(
        """select month, category, count(*) from marts.fct_monthly_rankings
           group by all""").fetchall()}
    posts = []
    if _table_exists(con, "marts", "fct_top_posts"):
        posts = _dicts(con.execute(f"""select {', '.join(POST_COLUMNS)} from marts.fct_top_posts
                                       order by month desc, category, post_rank"""),
                       POST_COLUMNS)
    latest = con.execute("""select territory_id, arg_max(territory_name, month),
                                   arg_max(category, month)
                            from marts.fct_monthly_rankings group by territory_id
                            order by 2, 1""").fetchall()
    labels = {c["category"]: c["label"] for c in categories}
    data = SiteData(categories=categories, months=[r[0] for r in month_rows],
                    provisional={r[0] for r in month_rows if r[1]},
                    is_demo=any(r[2] for r in month_rows), ranked_counts=counts, posts=posts,
                    names={tid: name for tid, name, _ in latest},
                    search=[(name or tid.split(":", 1)[-1], tid.split(":", 1)[-1],
                             f"territoires/{slug(tid)}.html",
                             labels.get(cat, cat)) for tid, name, cat in latest])
    if data.latest is not None:
        data.areas = [tuple(r) for r in con.execute("""
            select 'departement', code_departement, any_value(departement_name),
                   any_value(code_region)
            from marts.fct_monthly_rankings
            where month = ? and code_departement is not null and category <> 'region'
            group by code_departement
            union all
            select 'region', code_region, any_value(region_name), code_region
            from marts.fct_monthly_rankings where month = ? and code_region is not null
            group by code_region
            order by 1, 2""", [data.latest, data.latest]).fetchall()]
        data.search += [(name or code, code, area_page(kind, code), AREA_LABELS[kind])
                        for kind, code, name, _ in data.areas]   # a name, or its code
    return data


AREA_LABELS = {"departement": "Tous les territoires du département",
               "region": "Tous les territoires de la région"}


def area_page(kind: str, code: str) -> str:
    """('departement', '2A') → 'departements/2A.html' (from the site's root)."""
    return f"{KINDS[kind][0]}/{code}.html"


def read_month_rankings(con: duckdb.DuckDBPyConnection,
                        month: dt.date) -> dict[str, list[dict[str, Any]]]:
    """category → the month's ranked rows, by rank."""
    by_category: dict[str, list] = defaultdict(list)
    for row in _dicts(con.execute(f"""select {', '.join(RANKING_COLUMNS)}
                                      from marts.fct_monthly_rankings where month = ?
                                      order by category, rank""", [month]), RANKING_COLUMNS):
        by_category[row["category"]].append(row)
    return by_category


def read_month_alerts(con: duckdb.DuckDBPyConnection, month: dt.date) -> list[dict[str, Any]]:
    return _dicts(con.execute(f"""select {', '.join(ALERT_COLUMNS)} from marts.account_alerts
                                  where month = ? order by territory_id, alert""", [month]),
                  ALERT_COLUMNS)


def ranked_territories(con: duckdb.DuckDBPyConnection, months: list[dt.date]) -> list[str]:
    """The territories ranked in any of `months`, sorted."""
    return [r[0] for r in con.execute(
        """select distinct territory_id from marts.fct_monthly_rankings
           where month in (select unnest(?::date[])) order by 1""", [months]).fetchall()]


@dataclass
class TerritoryHistory:
    """What a territory page shows: its last 12 ranked months in full, and its rank and
    follower charts over every month from its first to its last ranked month (the points
    as SVG text, one string per run of consecutive ranked months: see `site.svg`)."""
    recent: list[dict[str, Any]]                # ascending, at most RECENT_MONTHS rows
    first: int                                  # index of its first ranked month in SiteData.months
    n: int                                      # months from its first to its last ranked month
    rank_hi: int                                # rank axis: 1 (top) to rank_hi
    followers_lo: int
    followers_hi: int
    rank_points: list[str]
    followers_points: list[str]


def _charts_sql() -> str:
    """Per territory of a batch: its span in the site's months, the axis bounds and the
    chart points, and the month from which its last 12 ranked months start."""
    rank = points_sql("mi - first", "n", "rank", "1", "rank_hi", invert=True)
    followers = points_sql("mi - first", "n", "followers", "followers_lo", "followers_hi",
                           invert=False)
    return f"""
        with site_months as (select unnest(?::date[]) as month, unnest(range(?)) as mi),
        ranked as (
            select r.territory_id, r.month, m.mi, r.rank, r.followers,
                   row_number() over (partition by r.territory_id order by m.mi desc) as back,
                   -- consecutive ranked months share mi - row_number()
                   m.mi - row_number() over (partition by r.territory_id order by m.mi) as run
            from marts.fct_monthly_rankings r join site_months m on m.month = r.month
            where r.territory_id in (select unnest(?::varchar[]))),
        spans as (
            select territory_id, min(mi) as first, max(mi) - min(mi) + 1 as n,
                   greatest(max(rank), 2) as rank_hi, min(followers) as followers_lo,
                   if(max(followers) = min(followers), min(followers) + 1, max(followers))
                       as followers_hi,
                   min(month) filter (where back <= {RECENT_MONTHS}) as cut
            from ranked group by territory_id),
        runs as (
            select territory_id, run,
                   string_agg({rank}, ' ' order by mi) as rank_points,
                   string_agg({followers}, ' ' order by mi) as followers_points
            from ranked join spans using (territory_id)
            group by territory_id, run)
        select territory_id, first, n, rank_hi, followers_lo, followers_hi, cut,
               list(rank_points order by run), list(followers_points order by run)
        from spans join runs using (territory_id)
        group by all order by territory_id"""


def territory_batches(con: duckdb.DuckDBPyConnection, territory_ids: list[str],
                      months: list[dt.date],
                      size: int = TERRITORY_BATCH) -> Iterator[tuple[dict, dict]]:
    """Per batch of `size` territories: (territory_id → TerritoryHistory; territory_id →
    its most recent alerts, newest first). `months` are the site's months (the charts' x
    axis). The charts are drawn in SQL; the full rows are read from each territory's 12th
    latest ranked month on."""
    cols = ", ".join(RANKING_COLUMNS)
    charts_sql = _charts_sql()
    for i in range(0, len(territory_ids), size):
        ids = territory_ids[i:i + size]
        charts = con.execute(charts_sql, [months, len(months), ids]).fetchall()
        recent: dict[str, list] = defaultdict(list)
        cuts = [c[6] for c in charts]
        for row in _dicts(con.execute(f"""
                select {cols} from marts.fct_monthly_rankings r
                join (select unnest(?::varchar[]) as cut_id, unnest(?::date[]) as cut)
                  on r.territory_id = cut_id and r.month >= cut
                where r.month >= ?  -- lets DuckDB skip the older months' row groups
                order by territory_id, month""", [[c[0] for c in charts], cuts,
                                                  min(cuts, default=dt.date.max)]),
                RANKING_COLUMNS):
            recent[row["territory_id"]].append(row)
        history = {tid: TerritoryHistory(recent[tid], first, n, rank_hi, fol_lo, fol_hi,
                                         rank_points, followers_points)
                   for tid, first, n, rank_hi, fol_lo, fol_hi, _, rank_points, followers_points
                   in charts}
        alerts: dict[str, list] = defaultdict(list)
        for row in _dicts(con.execute(f"""
                select {', '.join(ALERT_COLUMNS)} from marts.account_alerts
                where territory_id in (select unnest(?::varchar[]))
                qualify row_number() over (partition by territory_id
                                           order by month desc, alert) <= {TERRITORY_ALERTS}
                order by territory_id, month desc, alert""", [ids]), ALERT_COLUMNS):
            alerts[row["territory_id"]].append(row)
        yield history, alerts
