"""Account identity end to end: the Instagram id behind a handle changes in August.

June and July rank @gersledepartement (id A) and @isere.le.departement; in August the
handle answers with another id (B: deleted and re-registered by someone else). August is
ranked, raises `account_changed` with both ids, and starts a new history; June and July
stay exactly as a run without the change gives them.
"""
from __future__ import annotations

import pytest
from pipeline_support import run_cli
from rel_helpers import dumps, query, snapshot, write

pytestmark = pytest.mark.slow

REGISTRY = "handle,territory_id\ngersledepartement,departement:32\nisere.le.departement,departement:38\n"
SQL_HISTORY = """select month, territory_id, rank, previous_rank, is_new_entry, score
                 from marts.fct_monthly_rankings where month < '2021-08-01' order by all"""


def landing(root, august_id: str) -> None:
    for month, day, gers_id, followers in (("2021-06", "30", "A", 1000), ("2021-07", "31", "A", 1100),
                                           ("2021-08", "31", august_id, 40)):
        fetched = f"{month}-{day}T20:00:00Z"
        write(root / "landing" / "instagram", month, "import-1.ndjson", [
            dumps(snapshot("gersledepartement", fetched, source="import", id=gers_id,
                           followers_count=followers, items=[])),
            dumps(snapshot("isere.le.departement", fetched, source="import", id="I",
                           followers_count=5000, items=[]))])


def build(tmp_path, name: str, august_id: str):
    data = tmp_path / name
    registry = tmp_path / f"{name}.csv"
    registry.write_text(REGISTRY, encoding="utf-8")
    landing(data, august_id)
    proc = run_cli(["run", "--source", "landing", "--from", "2021-06", "--to", "2021-08",
                    "--accounts", str(registry), "--data-dir", str(data)], data)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return data / "published" / "warehouse.duckdb"


def test_changed_account_alerts_and_starts_a_new_history(tmp_path):
    same = build(tmp_path, "same", "A")
    changed = build(tmp_path, "changed", "B")
    # August: ranked, but not chained to July
    row = query(changed, """select rank, previous_rank, rank_change, is_new_entry,
                                   account_changed, ig_user_id
                            from marts.fct_monthly_rankings
                            where month = '2021-08-01' and territory_id = 'departement:32'""")
    assert row == [(2, None, None, True, True, "B")]
    growth = query(changed, """select followers_growth, followers_growth_rate
                               from marts.fct_account_monthly
                               where month = '2021-08-01' and territory_id = 'departement:32'""")
    assert growth == [(None, None)]
    alerts = query(changed, """select month, territory_id, alert, detail from marts.account_alerts
                               where alert = 'account_changed'""")
    assert len(alerts) == 1 and alerts[0][1] == "departement:32"
    assert "from A (previous month) to B" in alerts[0][3]
    # without the change the same month is chained
    july_rank = query(same, """select rank from marts.fct_monthly_rankings
                               where month = '2021-07-01' and territory_id = 'departement:32'""")
    assert query(same, """select previous_rank, is_new_entry, account_changed
                          from marts.fct_monthly_rankings
                          where month = '2021-08-01' and territory_id = 'departement:32'"""
                 ) == [(july_rank[0][0], False, False)]
    assert query(same, "select count(*) from marts.account_alerts") == [(0,)]
    # the history before the change is intact
    assert query(changed, SQL_HISTORY) == query(same, SQL_HISTORY)
