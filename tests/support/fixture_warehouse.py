"""Build a small, plausible warehouse with the `marts` tables the exports read, through the
real dbt models: the fixture writes reference CSVs for its territories (a seeds folder of
its own) and raw snapshots, posts and accounts, then runs `dbt run` on them
(`dagster_project.defs.dbt_manifest.run_dbt_process`). No scoring SQL is copied here.

Two months (2021-06, 2021-07 by default), the 8 categories, plus the awkward cases the
exports must survive:

- territory names `=HYPERLINK("x")`, `+33 Ville`, `-Tiret` (formula injection attempts);
- a negative followers growth (Paris: -12 in July);
- an exact tie (Eure and Haute-Marne: identical KPIs → same score, Eure first by id);
- a new entry in July (Charente-Maritime);
- more ranked accounts than the Top N in `grande_ville` (24 ranked, Top 20 exported);
- alerts in July: Ténarèze `unavailable` (a `not_found` snapshot; ranked in June), Métropole
  de Metz `no_snapshot` (ranked in June), CC Sans Historique `no_snapshot` (never ranked:
  its only snapshot, in June, is an `error`);
- July provisional when asked (dbt marks only the current month provisional: the fixture
  sets the flag on the months it is given).
- demo rows: every row of the `demo_categories` (default: petite_ville) is `is_demo`.

Usable outside pytest: `python tests/support/fixture_warehouse.py /tmp/w.duckdb`.
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

def _kind_code(territory_id: str) -> tuple[str, str]:
    kind, code = territory_id.split(":", 1)
    return kind, code


_EPCI_TYPES = {"metropole": "METRO", "communaute_agglomeration": "CA",
               "communaute_communes": "CC"}
REPO_SEEDS = Path(__file__).resolve().parents[2] / "seeds"


def _draw_snapshots(months, demo_categories, provisional_months, seed):
    """(month, territory_id, handle, category, population, followers, follows, posts,
    interactions, media_count, fetched_at, source, is_demo, is_provisional) of every ok
    reference snapshot (one per month and account), drawn from `seed`."""
    rng = np.random.default_rng(seed)
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
            fetched = dt.datetime(last_day.year, last_day.month, last_day.day, 22) \
                - dt.timedelta(hours=ti % 5 * 7)
            rows.append((month, tid, handle, cat, pop, followers, follows, posts,
                         interactions, int(rng.integers(200, 4000)), fetched,
                         "demo" if demo else "graph_api", demo, month in provisional_months))
    return rows


def _write_csv(path: Path, header: list[str], rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_seeds(folder: Path) -> Path:
    """The reference CSVs of the fixture's territories (same columns as seeds/), one vintage
    (2026, package 6.0.0, in force since 2017-10; dbt's sources also read vintages/*/, so an
    empty vintages/2019/ keeps that pattern matching a file). The populations of régions
    and départements are sums of their communes in the models: a filler commune per
    département and région makes up the fixture's figure (it has no account)."""
    communes = [[code, name, dep, reg, "metro", pop, ""]
                for tid, name, cat, pop, _h, dep, reg in TERRITORIES
                if tid.startswith("commune:") for code in [tid.split(":", 1)[1]]]
    for tid, name, _cat, pop, _h, dep, reg in TERRITORIES:
        if tid.startswith("departement:"):
            rest = pop - sum(c[5] for c in communes if c[2] == dep)
            communes.append([f"F{dep}", f"Reste de {name}", dep, reg, "metro", rest, ""])
    for tid, name, _cat, pop, _h, _dep, _reg in TERRITORIES:
        if tid.startswith("region:"):
            code = tid.split(":", 1)[1]
            rest = pop - sum(c[5] for c in communes if c[3] == code)
            communes.append([f"R{code}", f"Reste de {name}", f"R{code}", code, "metro", rest, ""])
    assert all(c[5] >= 0 for c in communes), "a filler commune would be negative"
    tables = {
        "regions.csv": (["code", "name"], [[tid.split(":", 1)[1], name] for tid, name, *_ in
                                          TERRITORIES if tid.startswith("region:")]),
        "departements.csv": (["code", "name", "code_region"],
                             [[dep, name, reg] for tid, name, _c, _p, _h, dep, reg in TERRITORIES
                              if tid.startswith("departement:")]),
        "epci.csv": (["siren", "name", "type", "population"],
                     [[tid.split(":", 1)[1], name, _EPCI_TYPES[cat], pop]
                      for tid, name, cat, pop, *_ in TERRITORIES if tid.startswith("epci:")]),
        "communes.csv": (["code", "name", "code_departement", "code_region", "zone",
                          "population", "epci_siren"], communes),
    }
    for name, (header, rows) in tables.items():
        _write_csv(folder / name, header, rows)
        _write_csv(folder / "vintages" / "2019" / name, header, [])
    _write_csv(folder / "vintages.csv", ["vintage", "package_version", "folder", "source"],
               [[2026, "6.0.0", "", "fixture"]])
    _write_csv(folder / "commune_successors.csv", ["vintage", "code", "merged_into"], [])
    for name in ("categories.csv", "scoring_weights.csv"):   # the product's own
        (folder / name).write_bytes((REPO_SEEDS / name).read_bytes())
    return folder


def write_raw(con: duckdb.DuckDBPyConnection, rows: list, months: tuple[dt.date, ...]) -> None:
    """raw.snapshots, raw.media and raw.accounts as the loader would write them."""
    from dagster_project.load.schema import ensure_schema

    ensure_schema(con)
    loaded = dt.datetime(2021, 8, 1)
    ids = {tid: f"1784{i:06d}" for i, (tid, *_r) in enumerate(TERRITORIES)}
    snaps, media = [], []

    def snapshot(month, tid, handle, fetched, status, **kw):
        snaps.append([month, f"{month:%Y-%m}/fixture.ndjson", len(snaps) + 1, handle, fetched,
                      kw.get("source", "graph_api"), status, kw.get("code"), kw.get("subcode"),
                      kw.get("message"), ids[tid], handle, None, kw.get("followers"),
                      kw.get("follows"), kw.get("media_count"), kw.get("posts"), loaded])

    for (month, tid, handle, _cat, _pop, followers, follows, posts, interactions, media_count,
         fetched, source, _demo, _prov) in rows:
        snapshot(month, tid, handle, fetched, "ok", source=source, followers=followers,
                 follows=follows, media_count=media_count, posts=posts)
        for i in range(posts):   # interactions spread over the posts, as likes
            likes = interactions // posts + (1 if i < interactions % posts else 0)
            media.append([month, snaps[-1][1], snaps[-1][2], handle, fetched,
                          f"{tid}-{month:%Y%m}-{i}", fetched - dt.timedelta(hours=i + 1),
                          "IMAGE", "FEED", likes, 0, None, None])
    last = months[-1]
    handles = {tid: handle for tid, _n, _c, _p, handle, *_r in TERRITORIES}
    snapshot(last, "epci:243200508", handles["epci:243200508"], dt.datetime(2021, 7, 30, 9),
             "not_found", code=110, subcode=2207013, message="Cannot find User")
    for tid in NEVER_RANKED:   # seen once (an error), never ranked
        snapshot(months[0], tid, handles[tid], dt.datetime(2021, 6, 29, 9), "error", code=2,
                 message="An unexpected error has occurred")
    con.executemany(f"insert into raw.snapshots values ({', '.join('?' * 18)})", snaps)
    con.executemany(f"insert into raw.media values ({', '.join('?' * 13)})", media)
    con.executemany(
        "insert into raw.accounts (handle, territory_id, source_url, checked_on, registry_file, "
        "registry_line, loaded_at) values (?, ?, '', '', 'accounts.csv', ?, ?)",
        [(handle, tid, i + 2, loaded) for i, (tid, _n, _c, _p, handle, *_r)
         in enumerate(TERRITORIES)])


def build_warehouse(path: Path, *, months: tuple[dt.date, ...] = MONTHS,
                    demo_categories: tuple[str, ...] = ("petite_ville",),
                    provisional_months: tuple[dt.date, ...] = (),
                    seed: int = 7) -> Path:
    """Create (or overwrite) the warehouse `path` (its folder gets a `seeds/` of its own)
    through `dbt run`; returns the path."""
    from dagster_project.defs.dbt_manifest import run_dbt_process

    path = Path(path)
    if path.exists():
        path.unlink()
    rows = _draw_snapshots(months, demo_categories, provisional_months, seed)
    seeds = write_seeds(path.parent / "seeds")
    with duckdb.connect(str(path)) as con:
        write_raw(con, rows, months)
    run_dbt_process(["run", "--quiet"], warehouse=path, seeds_dir=seeds)
    if provisional_months:   # dbt marks the current month; the fixture's months are past
        with duckdb.connect(str(path)) as con:
            con.execute("update marts.fct_monthly_rankings set is_provisional = true "
                        "where month = any(?)", [list(provisional_months)])
    return path


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "fixture_warehouse.duckdb")
    print(build_warehouse(out))
