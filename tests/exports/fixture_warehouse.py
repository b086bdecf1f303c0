"""Build a small, plausible warehouse with the `marts` tables the exports read.

Two months (2021-06, 2021-07 by default), the 8 categories, rankings computed in DuckDB with
the method of docs/methodologie.md (percent_rank per KPI, weights 5/4/3/2/1, round 6, tie-break followers
desc then territory_id), plus the awkward cases the exports must survive:

- territory names `=HYPERLINK("x")`, `+33 Ville`, `-Tiret` (formula injection attempts);
- a negative followers growth (Paris: -12 in July);
- an exact tie (Eure and Haute-Marne: identical KPIs → same score, Eure first by id);
- a new entry in July (Charente-Maritime);
- more ranked accounts than the Top N in `grande_ville` (24 ranked, Top 20 exported);
- alerts in July: Ténarèze `unavailable` (ranked in June), Métropole de Metz `no_snapshot`
  (ranked in June), CC Sans Historique `no_snapshot` (never ranked);
- demo rows: every row of the `demo_categories` (default: petite_ville) is `is_demo`.

Usable outside pytest: `python tests/exports/fixture_warehouse.py /tmp/w.duckdb`.
"""
from __future__ import annotations

import csv
import datetime as dt
import sys
from pathlib import Path

import duckdb
import numpy as np

MONTHS = (dt.date(2021, 6, 1), dt.date(2021, 7, 1))

# The categories as the product defines them (seeds/categories.csv), not a copy.
with open(Path(__file__).resolve().parents[2] / "seeds" / "categories.csv", encoding="utf-8",
          newline="") as _fh:
    CATEGORIES = [(r["category"], r["label"], int(r["top_n"]), int(r["sort_order"]))
                  for r in csv.DictReader(_fh)]

# (territory_id, name, category, population, handle, code_departement, code_region)
TERRITORIES: list[tuple[str, str, str, int, str, str, str]] = [
    ("region:76", "Occitanie", "region", 6_022_176, "occitanie", "", "76"),
    ("region:84", "Auvergne-Rhône-Alpes", "region", 8_114_361, "auvergnerhonealpes", "", "84"),
    ("region:53", "Bretagne", "region", 3_402_932, "regionbretagne", "", "53"),
    ("region:11", "Île-de-France", "region", 12_317_279, "iledefrance", "", "11"),
    ("region:93", "Provence-Alpes-Côte d'Azur", "region", 5_127_840, "maregionsud", "", "93"),
    ("region:971", "Guadeloupe", "region", 378_561, "regionguadeloupe", "", "01"),
    ("departement:32", "Gers", "departement", 191_377, "gersledepartement", "32", "76"),
    ("departement:75", "Paris", "departement", 2_133_111, "paris_maville", "75", "11"),
    ("departement:38", "Isère", "departement", 1_282_567, "isere.le.departement", "38", "84"),
    ("departement:27", "Eure", "departement", 170_000, "eureennormandie", "27", "28"),
    ("departement:52", "Haute-Marne", "departement", 170_000, "haute_marne", "52", "44"),
    ("departement:07", "Ardèche", "departement", 328_278, "departement.ardeche", "07", "84"),
    ("departement:09", "Ariège", "departement", 153_287, "ariegeledpt", "09", "76"),
    ("departement:87", "Haute-Vienne", "departement", 372_359, "hautevienne_dep", "87", "75"),
    ("departement:17", "Charente-Maritime", "departement", 658_850, "ma_charente_maritime",
     "17", "75"),
    ("departement:2A", "Corse-du-Sud", "departement", 160_814, "corsedusud", "2A", "94"),
    ("epci:244400404", "Nantes Métropole", "metropole", 672_656, "nantesmetropole", "44", "52"),
    ("epci:246700488", "Eurométropole de Strasbourg", "metropole", 505_272, "strasbourg.eu",
     "67", "44"),
    ("epci:242900314", "Brest Métropole", "metropole", 210_047, "brestmetropole", "29", "53"),
    ("epci:243500139", "Rennes Métropole", "metropole", 460_000, "rennesmetropole", "35", "53"),
    ("epci:200039865", "Metz Métropole", "metropole", 222_000, "metzmetropole", "57", "44"),
    ("epci:200046977", "Métropole de Lyon", "metropole", 1_411_571, "grandlyon", "69", "84"),
    ("epci:200068781", "CA du Grand Besançon", "communaute_agglomeration", 196_000,
     "grandbesancon", "25", "27"),
    ("epci:243100518", "CU du Grand Poitiers", "communaute_agglomeration", 193_000,
     "grandpoitiers", "86", "75"),
    ("epci:200040715", "CA Grand Annecy", "communaute_agglomeration", 206_000,
     "grandannecy", "74", "84"),
    ("epci:247200132", "CU Le Mans Métropole", "communaute_agglomeration", 207_000,
     "lemansmetropole", "72", "52"),
    ("epci:200066959", "CA Pays de Grasse", "communaute_agglomeration", 101_000,
     "paysdegrasse", "06", "93"),
    ("epci:200067478", "CC Comtal Lot et Truyère", "communaute_communes", 13_800,
     "cc_comtal_lot_truyere", "12", "76"),
    ("epci:242900645", "CC du Pays Bigouden Sud", "communaute_communes", 37_600,
     "paysbigouden", "29", "53"),
    ("epci:200072460", "CC des Coëvrons", "communaute_communes", 27_400, "lescoevrons", "53",
     "52"),
    ("epci:200066744", "CC Isigny-Omaha Intercom", "communaute_communes", 24_100,
     "isignyomahintercom", "14", "28"),
    ("epci:243200508", "CC de la Ténarèze", "communaute_communes", 15_200, "latenareze", "32",
     "76"),
    ("epci:200066405", "-Tiret", "communaute_communes", 9_500, "tiret_cc", "09", "76"),
    ("epci:200071983", "CC du Pays de Valois", "communaute_communes", 55_000, "ccpaysdevalois",
     "60", "32"),
    ("epci:200043123", "CC Sans Historique", "communaute_communes", 12_000, "sanshistorique",
     "23", "75"),
]
_BIG_CITIES = [
    ("37261", "Tours", 136_463), ("31555", "Toulouse", 493_465), ("44109", "Nantes", 320_732),
    ("06088", "Nice", 342_669), ("67482", "Strasbourg", 287_228), ("34172", "Montpellier",
                                                                   299_096),
    ("33063", "Bordeaux", 261_804), ("59350", "Lille", 236_234), ("35238", "Rennes", 222_485),
    ("51454", "Reims", 180_318), ("42218", "Saint-Étienne", 173_089), ("83137", "Toulon",
                                                                        180_452),
    ("76351", "Le Havre", 166_058), ("38185", "Grenoble", 156_389), ("21231", "Dijon",
                                                                    159_346),
    ("49007", "Angers", 157_175), ("30189", "Nîmes", 148_561), ("69266", "Villeurbanne",
                                                                 154_781),
    ("63113", "Clermont-Ferrand", 147_284), ("72181", "Le Mans", 145_004),
    ("13001", "Aix-en-Provence", 147_478), ("29019", "Brest", 139_619),
    ("87085", "Limoges", 129_754), ("80021", "Amiens", 133_625),
]
for _code, _name, _pop in _BIG_CITIES:
    _slug = "".join(c for c in _name.lower() if c.isascii() and c.isalnum())
    TERRITORIES.append((f"commune:{_code}", _name, "grande_ville", _pop, f"ville{_slug}",
                        _code[:2], "00"))
TERRITORIES += [
    ("commune:06083", "Menton", "ville_moyenne", 30_231, "villedementon", "06", "93"),
    ("commune:12145", "Millau", "ville_moyenne", 21_859, "stylemillau", "12", "76"),
    ("commune:64445", "Pau", "ville_moyenne", 75_665, "villedepau", "64", "75"),
    ("commune:71076", "Chalon-sur-Saône", "ville_moyenne", 44_000, "chalonsursaone", "71", "27"),
    ("commune:99001", '=HYPERLINK("x")', "ville_moyenne", 25_000, "hyperlink_test", "99", "00"),
    ("commune:04116", "Méailles", "petite_ville", 124, "meailles", "04", "93"),
    ("commune:99002", "+33 Ville", "petite_ville", 3_300, "plus33ville", "99", "00"),
    ("commune:23096", "Guéret", "petite_ville", 12_900, "villedegueret", "23", "75"),
    ("commune:32013", "Auch", "petite_ville", 19_500, "auch_ville", "32", "76"),
    ("commune:46042", "Cahors", "petite_ville", 19_400, "villedecahors", "46", "76"),
]

NEW_IN_JULY = "departement:17"          # new entry in July
TIE_PAIR = ("departement:27", "departement:52")
ALERTS_JULY = {
    "epci:243200508": ("unavailable", "not_found: compte supprimé ou renommé (code 100)"),
    "epci:200039865": ("no_snapshot", "aucun relevé ce mois-ci"),
    "epci:200043123": ("no_snapshot", "aucun relevé ce mois-ci"),
}
NEVER_RANKED = {"epci:200043123"}
LOSES_12 = "departement:75"             # Paris loses exactly 12 followers

WEIGHTS = {"engagement_rate": 5, "reach": 4, "posts_per_day": 3, "followers": 2,
           "follower_ratio": 1}


def _kind_code(territory_id: str) -> tuple[str, str]:
    kind, code = territory_id.split(":", 1)
    return kind, code


def build_warehouse(path: Path, *, months: tuple[dt.date, ...] = MONTHS,
                    demo_categories: tuple[str, ...] = ("petite_ville",),
                    provisional_months: tuple[dt.date, ...] = (),
                    seed: int = 7) -> Path:
    """Create (or overwrite) a DuckDB file at `path` with the marts tables; returns the path."""
    path = Path(path)
    if path.exists():
        path.unlink()
    rng = np.random.default_rng(seed)
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema marts")
        con.execute("""create table marts.dim_categories(category varchar, label varchar,
                       top_n integer, sort_order integer)""")
        con.executemany("insert into marts.dim_categories values (?, ?, ?, ?)", CATEGORIES)
        con.execute("""create table marts.dim_territories(territory_id varchar, kind varchar,
                       code varchar, name varchar, category varchar, population bigint,
                       code_departement varchar, code_region varchar)""")
        con.executemany(
            "insert into marts.dim_territories values (?, ?, ?, ?, ?, ?, ?, ?)",
            [(tid, *_kind_code(tid), name, cat, pop, dep or None, reg)
             for tid, name, cat, pop, _h, dep, reg in TERRITORIES])

        # ---------- simulated reference snapshots, one per (month, account)
        rows = []
        base = {}
        for tid, _name, cat, pop, handle, _d, _r in TERRITORIES:
            followers = int(max(300, pop * rng.uniform(0.002, 0.05)))
            if cat == "petite_ville":
                followers = int(max(80, pop * rng.uniform(0.02, 0.3)))
            base[tid] = (followers, int(rng.integers(40, 1500)))
        base[TIE_PAIR[1]] = base[TIE_PAIR[0]]
        for mi, month in enumerate(months):
            last_day = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1) \
                - dt.timedelta(days=1)
            for ti, (tid, _name, cat, pop, handle, _d, _r) in enumerate(TERRITORIES):
                if mi == 0 and tid == NEW_IN_JULY:
                    continue
                if mi == len(months) - 1 and tid in ALERTS_JULY:
                    continue
                if tid in NEVER_RANKED:
                    continue
                f0, follows = base[tid]
                followers = int(f0 * (1 + 0.03 * mi + rng.uniform(-0.01, 0.02)))
                if tid == LOSES_12:               # followers_growth = -12 in July
                    followers = f0 - 12 * mi
                posts = int(rng.integers(0, 45))
                interactions = int(posts * followers * rng.uniform(0.005, 0.08))
                if tid == TIE_PAIR[1]:            # exact clone of its tie partner
                    prev = next(r for r in rows if r[0] == month and r[1] == TIE_PAIR[0])
                    followers, follows, posts, interactions = prev[5], prev[6], prev[7], prev[8]
                elif tid == TIE_PAIR[0]:
                    follows = base[tid][1]
                demo = cat in demo_categories
                fetched = dt.datetime(last_day.year, last_day.month, last_day.day, 22,
                                      tzinfo=dt.UTC) - dt.timedelta(hours=ti % 5 * 7)
                rows.append((month, tid, handle, cat, pop, followers, follows, posts,
                             interactions, int(rng.integers(200, 4000)), fetched,
                             "demo" if demo else "graph_api", demo,
                             month in provisional_months))
        con.execute("""create temp table snap(month date, territory_id varchar, handle varchar,
                       category varchar, population bigint, followers bigint, follows bigint,
                       posts_30d integer, interactions_30d bigint, media_count integer,
                       snapshot_at timestamptz, source varchar, is_demo boolean,
                       is_provisional boolean)""")
        con.executemany("insert into snap values (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)

        w = WEIGHTS
        con.execute("""
        create temp table kpi as
        with k as (
            select *,
                posts_30d / 30.0 as posts_per_day,
                case when posts_30d = 0 or followers = 0 then 0
                     else interactions_30d / (posts_30d * followers) end as engagement_rate,
                followers / population as reach,
                followers / greatest(follows, 1) as follower_ratio
            from snap
        ),
        prev as (
            select k.*, p.followers as prev_followers
            from k left join k p
              on p.territory_id = k.territory_id and p.month = k.month - interval 1 month
        )
        select *,
            followers - prev_followers as followers_growth,
            (followers - prev_followers) / prev_followers as followers_growth_rate
        from prev
        """)
        con.execute("""
        create table marts.fct_account_monthly as
        select month, territory_id, handle, category, followers, follows, media_count,
               posts_30d, posts_per_day, interactions_30d, engagement_rate, reach,
               follower_ratio, followers_growth, followers_growth_rate, source, is_demo
        from kpi order by month, territory_id
        """)
        con.execute(f"""
        create table marts.fct_monthly_rankings as
        with p as (
            select *,
                percent_rank() over (partition by month, category order by engagement_rate) pe,
                percent_rank() over (partition by month, category order by reach) pr,
                percent_rank() over (partition by month, category order by posts_per_day) pp,
                percent_rank() over (partition by month, category order by followers) pf,
                percent_rank() over (partition by month, category order by follower_ratio) po
            from kpi
        ),
        s as (
            select *, round(100 * ({w['engagement_rate']} * pe + {w['reach']} * pr
                   + {w['posts_per_day']} * pp + {w['followers']} * pf
                   + {w['follower_ratio']} * po) / {sum(w.values())}, 6) as score
            from p
        ),
        r as (
            select *, row_number() over (partition by month, category
                                         order by score desc, followers desc, territory_id)
                      as rank
            from s
        ),
        j as (
            select r.*, prev.rank as previous_rank
            from r left join r prev
              on prev.territory_id = r.territory_id and prev.month = r.month - interval 1 month
        )
        select j.month, j.category, j.rank::integer as rank, j.territory_id,
               t.name as territory_name, j.handle, j.score, j.engagement_rate, j.reach,
               j.posts_per_day, j.followers, j.follower_ratio, j.followers_growth,
               j.followers_growth_rate, j.previous_rank::integer as previous_rank,
               (j.previous_rank - j.rank)::integer as rank_change,
               j.previous_rank is null as is_new_entry, j.rank <= c.top_n as in_top_n,
               c.top_n, j.is_demo, j.is_provisional, j.snapshot_at, j.source
        from j
        join marts.dim_territories t on t.territory_id = j.territory_id
        join marts.dim_categories c on c.category = j.category
        order by j.month, c.sort_order, j.rank
        """)

        last = months[-1]
        con.execute("""create table marts.account_alerts(month date, territory_id varchar,
                       territory_name varchar, category varchar, handle varchar,
                       alert varchar, detail varchar, last_ranked_month date,
                       last_rank integer, is_demo boolean)""")
        for tid, (alert, detail) in ALERTS_JULY.items():
            t = next(x for x in TERRITORIES if x[0] == tid)
            lr = con.execute("""select month, rank from marts.fct_monthly_rankings
                                where territory_id = ? and month < ?
                                order by month desc limit 1""", [tid, last]).fetchone()
            con.execute("insert into marts.account_alerts values (?,?,?,?,?,?,?,?,?,?)",
                        [last, tid, t[1], t[2], t[4], alert, detail,
                         lr[0] if lr else None, lr[1] if lr else None,
                         t[2] in demo_categories])
    finally:
        con.close()
    return path


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "fixture_warehouse.duckdb")
    print(build_warehouse(out))
