"""Hidden likes end to end: landing file → loader → dbt → marts, numbers computed by hand.

Four départements, the same figures in July and August 2021, except that in July the Gers
hides its like counts (business_discovery then leaves `like_count` out of every post) and in
August shows them. One Gironde post has its comments off (`comments_count` left out too).

Per account (followers F, follows, posts of the 30 days n, interactions I):

    Gers      F 15 000, follows 100,   n 3, July: likes hidden, 10 comments each
                                            August: 300 likes + 10 comments each (I 930)
    Landes    F 20 000, follows 400,   n 2, I 200 + 300 = 500        ER 500 / (2 × 20 000) = 0.0125
    L.-et-G.  F  5 000, follows  50,   n 1, I 100 + 50 = 150         ER 0.03
    Gironde   F 40 000, follows 4 000, n 4, 400 likes each (one post without comments_count)
                                                                     ER 1 600 / (4 × 40 000) = 0.01

Percentiles (percent_rank over 4 accounts: 0, 1/3, 2/3, 1):
    reach     L.-et-G. < Gironde < Landes < Gers     (F ÷ population: 0.015, 0.025, 0.048, 0.078)
    posts/day L.-et-G. < Landes < Gers < Gironde     (n ÷ 30)
    followers L.-et-G. < Gers < Landes < Gironde
    ratio     Gironde < Landes < L.-et-G. < Gers     (10, 50, 100, 150)
    ER, July  over the three accounts with visible likes: Gironde 0, Landes 0.5, L.-et-G. 1;
              Gers: none
    ER, Aug.  Gironde 0, Landes 1/3, Gers 2/3 (930 / 45 000 = 0.0207), L.-et-G. 1

Scores (weights 5, 4, 3, 2, 1; total 15; without the engagement rate 10):
    July   Gers   100 × (4×1 + 3×2/3 + 2×1/3 + 1×1) / 10          = 76.666667  rank 1
           Landes 100 × (5×0.5 + 4×2/3 + 3×1/3 + 2×2/3 + 1×1/3) / 15 = 52.222222  rank 2
           Gironde 100 × (0 + 4×1/3 + 3×1 + 2×1 + 0) / 15          = 42.222222  rank 3
           L.-et-G. 100 × (5×1 + 0 + 0 + 0 + 1×2/3) / 15           = 37.777778  rank 4
    August Gers   100 × (5×2/3 + 4 + 2 + 2/3 + 1) / 15              = 73.333333  rank 1
           Landes 100 × (5×1/3 + 4×2/3 + 1 + 4/3 + 1/3) / 15        = 46.666667  rank 2
           Gironde 42.222222 rank 3, L.-et-G. 37.777778 rank 4 (unchanged: their engagement
           percentiles are the same whether the Gers is left out of them or placed between)
"""
from __future__ import annotations

import datetime as dt

import pytest
from pipeline_support import run_cli
from rel_helpers import dumps, media, query, snapshot, write

pytestmark = pytest.mark.slow

ACCOUNTS = {"gersledepartement": "departement:32", "landes.departement": "departement:40",
            "lotetgaronne": "departement:47", "gironde.departement": "departement:33"}


def post(month: str, i: int, likes, comments) -> dict:
    item = media(f"{month}-{i}", f"{month}-2{i}T09:00:00+0000", likes=likes, comments=comments)
    return {k: v for k, v in item.items() if v is not ...}


def lines(month: str, gers_hides: bool) -> list[str]:
    fetched = f"{month}-31T20:00:00Z"
    gers = [post(month, i, ... if gers_hides else 300, 10) for i in range(3)]
    figures = {
        "gersledepartement": (15000, 100, gers),
        "landes.departement": (20000, 400, [post(month, 3, 200, 0), post(month, 4, 300, 0)]),
        "lotetgaronne": (5000, 50, [post(month, 5, 100, 50)]),
        "gironde.departement": (40000, 4000, [post(month, 6 + i, 400, ... if i == 0 else 0)
                                              for i in range(4)]),
    }
    return [dumps(snapshot(handle, fetched, source="import", id=handle, name=handle,
                           followers_count=f, follows_count=follows, media_count=100, items=items))
            for handle, (f, follows, items) in figures.items()]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hidden")
    data = tmp / "data"
    registry = tmp / "accounts.csv"
    registry.write_text("handle,territory_id\n" + "".join(
        f"{h},{t}\n" for h, t in ACCOUNTS.items()), encoding="utf-8")
    write(data / "landing" / "instagram", "2021-07", "import-1.ndjson", lines("2021-07", True))
    write(data / "landing" / "instagram", "2021-08", "import-1.ndjson", lines("2021-08", False))
    proc = run_cli(["run", "--source", "landing", "--from", "2021-07", "--to", "2021-08",
                    "--accounts", str(registry), "--data-dir", str(data)], data)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return data / "published" / "warehouse.duckdb"


def dt_(month: int) -> dt.date:
    return dt.date(2021, month, 1)


def rankings(wh, month: str) -> dict[str, tuple]:
    return {t: rest for t, *rest in query(wh, """
        select territory_id, rank, score, engagement_rate, engagement_hidden, p_engagement_rate,
               posts_30d, posts_likes_hidden_30d
        from marts.fct_monthly_rankings where month = ? order by rank""", [f"{month}-01"])}


def test_hidden_likes_load_as_null_not_zero(warehouse):
    assert query(warehouse, "select count(*) from raw.rejected_lines") == [(0,)]
    assert query(warehouse, """select month, count(*), count(like_count), sum(comments_count)
                               from raw.media where handle = 'gersledepartement'
                               group by month order by month""") == [
        (dt_(7), 3, 0, 30), (dt_(8), 3, 3, 30)]
    assert query(warehouse, """select count(*) from raw.media
                               where handle = 'gironde.departement' and comments_count is null
                               and like_count = 400""") == [(2,)]   # one post a month


def test_account_hiding_likes_is_ranked_on_the_other_criteria(warehouse):
    july = rankings(warehouse, "2021-07")
    gers, landes, lot, gironde = (july[t] for t in ("departement:32", "departement:40",
                                                    "departement:47", "departement:33"))
    assert gers == [1, 76.666667, None, True, None, 3, 3]
    assert landes[:2] == [2, 52.222222] and landes[2] == pytest.approx(0.0125)
    assert landes[3:] == [False, 0.5, 2, 0]
    assert gironde[:2] == [3, 42.222222] and gironde[2] == pytest.approx(0.01)
    assert gironde[4] == 0.0
    assert lot[:2] == [4, 37.777778] and lot[2] == pytest.approx(0.03) and lot[4] == 1.0


def test_same_accounts_with_visible_likes(warehouse):
    august = rankings(warehouse, "2021-08")
    assert [(t, r[0], r[1]) for t, r in august.items()] == [
        ("departement:32", 1, 73.333333), ("departement:40", 2, 46.666667),
        ("departement:33", 3, 42.222222), ("departement:47", 4, 37.777778)]
    assert august["departement:32"][2] == pytest.approx(930 / 45000)
    assert august["departement:32"][3:] == [False, pytest.approx(2 / 3), 3, 0]


def test_likes_hidden_alert_once(warehouse):
    assert query(warehouse, "select month, territory_id, alert, detail, detail_fr"
                 " from marts.account_alerts where alert = 'likes_hidden'") == [
        (dt_(7), "departement:32", "likes_hidden",
         ("3 / 3 posts of the reference window hide their like counts: no engagement rate, "
          "score over the other criteria (weights rescaled)"),
         ("3 sur 3 publications de la fenêtre de 30 jours masquent leurs J'aime : taux "
          "d'engagement masqué, score pris sur les autres indicateurs (poids ramenés au même "
          "total)"))]
    assert query(warehouse, "select count(*) from marts.account_alerts") == [(1,)]


def test_exports_and_site_say_masque(warehouse):
    """The CSV, the report and the site write "masqué" for the Gers in July (no number),
    its engagement rate in August."""
    import csv

    from dagster_project.publish.exports.report import render_report

    data = warehouse.parent.parent
    for month, expected in (("2021-07", "masqué"), ("2021-08", "2,07")):
        with open(data / "exports" / month / "departement.csv", encoding="utf-8-sig",
                  newline="") as fh:
            rows = {r["territoire"]: r for r in csv.DictReader(fh, delimiter=";")}
        assert rows["Gers"]["taux d'engagement (%)"] == expected
        assert rows["Gers"]["score"] == ("76,67" if month == "2021-07" else "73,33")
        assert rows["Landes"]["taux d'engagement (%)"] == "1,25"
        report = render_report(warehouse, dt.date.fromisoformat(f"{month}-01"),
                               data.parent / "rapports").read_text(encoding="utf-8")
        assert ("masqué" in report) == (month == "2021-07")
        page = (data / "site" / "classements" / month / "departement.html").read_text(
            encoding="utf-8")
        assert ('title="mentions J\'aime masquées par le compte">masqué</td>' in page) == (
            month == "2021-07")
    alerts = (data / "exports" / "2021-07" / "alertes.csv").read_text(encoding="utf-8-sig")
    assert "mentions J'aime masquées" in alerts
