"""The simulated world of `make year`: a registry of about 60 real territories over every
category, and the Graph API stand-in's figures for a given day (followers grow, posts
appear, a few accounts hide their likes, one account disappears in the summer).

Pure functions of the day: the same calendar gives the same figures."""
from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import duckdb

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
# how many territories of each kind: regions, départements, EPCI by type, communes by size
PICKS = {"region": 4, "departement": 10, "METRO": 6, "CA": 8, "CC": 8,
         "grande_ville": 8, "ville_moyenne": 8, "petite_ville": 8}
HIDES_LIKES = 3            # the first accounts (by handle) of this many hide their likes
GONE = (dt.date(2027, 7, 10), dt.date(2027, 9, 1))   # one account answers "not found" then


def _stable(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def registry() -> list[tuple[str, str]]:
    """(handle, territory_id) for ~60 territories of the current vintage, picked by a stable
    hash (the same every run)."""
    con = duckdb.connect()
    q = {
        "region": "select 'region:' || code from read_csv('{s}/regions.csv', all_varchar=true)",
        "departement": "select 'departement:' || code "
                       "from read_csv('{s}/departements.csv', all_varchar=true)",
        **{kind: "select 'epci:' || siren from read_csv('{s}/epci.csv', all_varchar=true) "
                 f"where type in {types}"
           for kind, types in (("METRO", ("METRO", "MET69")), ("CA", ("CA", "CU")),
                               ("CC", ("CC", "")))},
        "grande_ville": "select 'commune:' || code from read_csv('{s}/communes.csv', "
                        "all_varchar=true) where zone = 'metro' and population::int >= 100000",
        "ville_moyenne": "select 'commune:' || code from read_csv('{s}/communes.csv', "
                         "all_varchar=true) where zone = 'metro' "
                         "and population::int between 20000 and 99999",
        "petite_ville": "select 'commune:' || code from read_csv('{s}/communes.csv', "
                        "all_varchar=true) where zone = 'metro' "
                        "and population::int between 2000 and 19999",
    }
    out = []
    for kind, n in PICKS.items():
        ids = [r[0] for r in con.execute(q[kind].format(s=SEEDS)).fetchall()]
        for tid in sorted(ids, key=lambda t: (_stable(t), t))[:n]:
            out.append((f"year.{tid.replace(':', '.')}", tid))
    con.close()
    return sorted(out)


def hides_likes(handle: str, handles: list[str]) -> bool:
    return handle in sorted(handles, key=_stable)[:HIDES_LIKES]


def gone(handle: str, handles: list[str], day: dt.date) -> bool:
    """The summer's disappearance: one account, from GONE[0] to GONE[1]."""
    return handle == max(handles, key=_stable) and GONE[0] <= day < GONE[1]


def figures(handle: str, day: dt.date, now: dt.datetime) -> tuple[int, int, list[dict]]:
    """Followers, follows and the latest posts of an account on a day: followers grow a
    little every day, a post every one to three days."""
    seed = _stable(handle)
    age = (day - dt.date(2026, 1, 1)).days
    followers = 2_000 + seed % 50_000 + age * (5 + seed % 20)
    every = 1 + seed % 3                       # a post every `every` days
    media = []
    for i in range(25):
        posted = dt.datetime.combine(day - dt.timedelta(days=i * every), dt.time(9, 30),
                                     dt.UTC)
        if posted > now:
            continue
        key = f"{handle}-{posted:%Y%m%d}"
        media.append({
            "id": f"y{_stable(key):010d}", "timestamp": posted.strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "media_type": "IMAGE", "media_product_type": "FEED",
            "like_count": 20 + _stable(key) % 400, "comments_count": _stable(key) % 30,
            "permalink": f"https://www.instagram.com/p/Y{_stable(key):010d}/",
        })
    return followers, 100 + seed % 900, media
