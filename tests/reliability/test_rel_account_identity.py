"""Account identity end to end: the Instagram id behind a handle changes in August.

June and July rank @gersledepartement (id A) and @isere.le.departement; in August the
handle answers with another id (B: deleted and re-registered by someone else). August is
ranked, raises `account_changed` with both ids, and starts a new history; June and July
stay chained as usual, and so does the other account.
"""
from __future__ import annotations

import pytest
from pipeline_support import run_cli
from rel_helpers import dumps, query, snapshot, write

pytestmark = pytest.mark.slow

REGISTRY = "handle,territory_id\ngersledepartement,departement:32\nisere.le.departement,departement:38\n"


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
    wh = build(tmp_path, "changed", "B")
    ranks = {(str(m), t): (r, p, n, c) for m, t, r, p, n, c in query(wh, """
        select month, territory_id, rank, previous_rank, is_new_entry, account_changed
        from marts.fct_monthly_rankings order by all""")}
    # June and July: one account, one history, chained as usual
    assert ranks[("2021-06-01", "departement:32")][1:] == (None, True, False)
    assert ranks[("2021-07-01", "departement:32")][1:] == (
        ranks[("2021-06-01", "departement:32")][0], False, False)
    # August: ranked, but not chained to July
    assert ranks[("2021-08-01", "departement:32")][1:] == (None, True, True)
    # the other account of the same month is chained as usual
    assert ranks[("2021-08-01", "departement:38")][1:] == (
        ranks[("2021-07-01", "departement:38")][0], False, False)
    growth = query(wh, """select month, followers_growth, ig_user_id from marts.fct_account_monthly
                          where territory_id = 'departement:32' order by month""")
    assert [(str(m), g, i) for m, g, i in growth] == [
        ("2021-06-01", None, "A"), ("2021-07-01", 100, "A"), ("2021-08-01", None, "B")]
    alerts = query(wh, "select month, territory_id, alert, detail, detail_fr "
                       "from marts.account_alerts")
    assert len(alerts) == 1 and alerts[0][1:3] == ("departement:32", "account_changed")
    assert "from A (previous month) to B" in alerts[0][3]
    assert alerts[0][4] == ("l'identifiant Instagram de @gersledepartement est passé de A "
                            "(mois précédent) à B")
