"""Data invariants after a demo run: checked on the warehouse and the exports."""
import csv
import datetime as dt
import gzip

import duckdb
import pytest

pytestmark = pytest.mark.slow


def q(data, sql):
    with duckdb.connect(str(data / "published" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_ranks_contiguous_per_month_and_category(demo_run):
    assert q(demo_run, """select month, category from marts.fct_monthly_rankings group by all
                          having min(rank) <> 1 or max(rank) <> count(*)
                              or count(distinct rank) <> count(*)""") == []


def test_one_row_per_month_and_territory(demo_run):
    for table in ("fct_account_monthly", "fct_monthly_rankings"):
        assert q(demo_run, f"select month, territory_id from marts.{table} group by all "
                           "having count(*) > 1") == [], table
    assert q(demo_run, "select month, territory_id, alert from marts.account_alerts "
                       "group by all having count(*) > 1") == []


def test_no_ranked_account_without_reference_snapshot(demo_run):
    assert q(demo_run, """
        select r.month, r.territory_id from marts.fct_monthly_rankings r
        left join raw.accounts a on a.territory_id = r.territory_id
        left join raw.snapshots s on s.handle = a.handle and s.month = r.month
             and s.status = 'ok' and s.fetched_at = r.snapshot_at
        where s.handle is null""") == []


def test_demo_rows_flagged_in_every_mart_and_export(demo_run):
    for table in ("fct_account_monthly", "fct_monthly_rankings", "account_alerts"):
        assert q(demo_run, f"select count(*) filter (where not is_demo), count(*) "
                           f"from marts.{table}")[0][0] == 0, table
    folder = demo_run / "exports" / "2021-08"
    paths = sorted(folder.rglob("*.csv"))          # départements/ and régions/ too
    assert len(paths) > 100
    for path in paths:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter=";"))
        assert rows and {r["données"] for r in rows} == {"démo"}, path.name


def test_raw_rows_equal_lines_landed_minus_rejected(demo_run):
    landed = {}
    for path in (demo_run / "landing" / "instagram").glob("*/*.ndjson.gz"):
        month = dt.date.fromisoformat(path.parent.name + "-01")
        text = gzip.decompress(path.read_bytes()).decode("utf-8")
        lines = sum(1 for line in text.splitlines() if line.strip())
        landed[month] = landed.get(month, 0) + lines
    loaded = dict(q(demo_run, "select month, count(*) from raw.snapshots group by 1"))
    rejected = dict(q(demo_run, "select month, count(*) from raw.rejected_lines where line > 0 group by 1"))
    assert landed and {k: loaded.get(k, 0) for k in landed} == {
        k: n - rejected.get(k, 0) for k, n in landed.items()}
