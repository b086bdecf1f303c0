"""Demo source: a deterministic, vectorised simulator of Instagram snapshots (docs/landing-format.md).

Everything it writes has `source = "demo"`, so the warehouse and the exports flag it.
Same seed → byte-identical landing files, whatever the requested month range: each
account's whole trajectory is drawn at once from the seed, then the requested months are
cut out of it.

What it reproduces (the README says how demo data is labelled):
- coverage by category: nearly every région / département / métropole / grande ville has
  an account, a minority of petites villes (more likely the bigger the commune);
- followers ∝ population with a heavy (log-normal) tail, growing over the years, with a
  jump at the March 2020 lockdown;
- posting cadence from a post a month to several a day; per-post engagement ≈ 1–5 %;
- hidden likes: about 4 % of the accounts hide their like counts from a month between
  June 2021 (when Instagram offered it) and now; their posts then carry `like_count: null`
  (the Graph API omits the field; the loader reads both as hidden);
- reels carry a `view_count` (about 10 to 30 views per interaction);
- incidents: accounts deleted (`not_found` from some month on, like @latenareze after
  July 2021), spells as a non-business account, occasional fetch errors (some with an
  earlier successful snapshot in the month to fall back on).
"""
from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import datetime as dt
import gzip
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from dagster_project import months as m
from dagster_project.archive import landing
from dagster_project.registry import accounts as registry_csv
from dagster_project.registry.accounts import Account, read_registry
from dagster_project.registry.territories import territories
from dagster_project.settings import SEEDS_DIR
from dagster_project.warehouse import sql_string

DEMO_SEED = 20171001
CHUNK_ACCOUNT_MONTHS = 15_000   # ~6 months of the default demo, 1 month at --scale
WRITER_MEMORY = "512MB"         # DuckDB memory of each of the two JSON writers (a national month needs ~300 MB)
DEMO_FILE = "demo.ndjson.gz"
DEMO_GZIP_LEVEL = 3   # 2.3x faster than gzip's default 6 for files 17 % larger (measured)
LEGACY_DEMO_FILE = "demo.ndjson"     # written uncompressed before the archive had manifests
LOCKDOWN = dt.date(2020, 3, 1)
# Accounts that went dark in reality: handle → first month answered `not_found`.
KNOWN_DELETIONS = {"latenareze": dt.date(2021, 8, 1)}

# category → (coverage, median reach in 2026, median posts/day, median creation offset in months)
PROFILE = {
    "region": (1.00, 0.012, 0.9, -24),
    "departement": (0.96, 0.05, 0.7, -18),
    "metropole": (1.00, 0.02, 0.7, -12),
    "communaute_agglomeration": (0.85, 0.012, 0.4, 6),
    "communaute_communes": (0.50, 0.03, 0.3, 18),
    "grande_ville": (1.00, 0.06, 0.9, -24),
    "ville_moyenne": (0.80, 0.08, 0.5, 0),
    "petite_ville": (None, 0.15, 0.25, 24),  # coverage grows with population, see _coverage
}


@dataclass(frozen=True)
class SimResult:
    months: int
    accounts: int
    snapshots: int
    media: int
    files: list[Path]


def _coverage(category: np.ndarray, population: np.ndarray) -> np.ndarray:
    cov = np.zeros(len(category))
    for cat, (c, *_rest) in PROFILE.items():
        if c is not None:
            cov[category == cat] = c
    small = category == "petite_ville"
    cov[small] = np.clip(0.004 * np.power(np.maximum(population[small], 1), 0.35), 0, 0.6)
    return cov


def build_registry(real_accounts: list[Account], *, scale: bool = False,
                   seed: int = DEMO_SEED, seeds_dir: Path = SEEDS_DIR) -> list[Account]:
    """The demo registry: the real known accounts plus simulated ones (`demo.<kind>.<code>`).

    `scale=True` gives every territory an account (≈ 36 000), for the benchmark.
    """
    terr = territories(seeds_dir)
    ids = np.array(terr.column("territory_id").to_pylist())
    cats = np.array(terr.column("category").to_pylist())
    pop = np.array([p or 0 for p in terr.column("population").to_pylist()], dtype=float)
    rng = np.random.default_rng([seed, 1])
    draw = rng.random(len(ids))
    chosen = np.ones(len(ids), bool) if scale else draw < _coverage(cats, pop)
    real_by_territory = {a.territory_id: a for a in real_accounts}
    out: list[Account] = []
    for tid in ids[chosen | np.isin(ids, list(real_by_territory))]:
        if tid in real_by_territory:
            out.append(real_by_territory[tid])
        else:
            kind, code = tid.split(":", 1)
            out.append(Account(f"demo.{kind}.{code.lower()}", tid, "", "simulated"))
    return out


def write_registry(accounts: list[Account], path: Path) -> Path:
    """The demo registry, atomically (two runs may write the same one at the same time)."""
    header = ["handle", "territory_id", "source_url", "checked_on"]
    return registry_csv.write_registry(path, header, [
        {"handle": a.handle, "territory_id": a.territory_id, "source_url": a.source_url,
         "checked_on": a.checked_on} for a in accounts])


def ensure_registry(path: Path, real_registry: Path, known: frozenset[str], *,
                    scale: bool = False) -> Path:
    """Write the demo registry (deterministic, so rewriting it is harmless)."""
    real, _rejected = read_registry(real_registry, known)
    return write_registry(build_registry(real, scale=scale), path)


def _month_index(d: dt.date) -> int:
    return (d.year - m.FIRST_MONTH.year) * 12 + d.month - m.FIRST_MONTH.month


def simulate(accounts: list[Account], months: list[dt.date], landing_dir: Path, *,
             seed: int = DEMO_SEED, now: dt.datetime | None = None,
             seeds_dir: Path = SEEDS_DIR) -> SimResult:
    """Write `<landing_dir>/<YYYY-MM>/demo.ndjson.gz` for each month (atomically, listed in
    the month's manifest; an identical file already there is left untouched)."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None)
    landing_dir = Path(landing_dir)
    months = sorted(set(months))
    if not months:
        return SimResult(0, len(accounts), 0, 0, [])
    terr = territories(seeds_dir)
    info = {tid: (cat, name, pop) for tid, cat, name, pop in zip(
        terr.column("territory_id").to_pylist(), terr.column("category").to_pylist(),
        terr.column("name").to_pylist(), terr.column("population").to_pylist())}
    accounts = sorted(accounts, key=lambda a: a.territory_id)
    n = len(accounts)
    # Account parameters and the whole grid are drawn for every account from the seed and
    # its territory_id order, independent of the requested months.
    rng = np.random.default_rng([seed, 2])
    T = _month_index(m.current_month(now.date())) + 1          # months simulated
    params = _account_params(accounts, info, rng, T)
    grid = _month_grid(params, rng, T)
    wanted = np.array([_month_index(x) for x in months])
    wanted = wanted[(wanted >= 0) & (wanted < T)]
    if len(wanted) == 0:
        return SimResult(len(months), n, 0, 0, [])
    snaps = _snapshots(grid, wanted, T, now)
    handles = np.array([a.handle for a in accounts], dtype=object)
    names = np.array([info[a.territory_id][1] for a in accounts], dtype=object)
    hide_from = _hide_likes_from(n, seed, T)
    files, n_media = _write_chunks(snaps, grid, params.er, hide_from, handles, names, seed,
                                   landing_dir)
    result = SimResult(len(wanted), n, len(snaps.acc), n_media, sorted(files))
    del params, grid, snaps
    _release_memory()
    return result


def _release_memory() -> None:
    """Hand the freed heap back to the OS (glibc keeps it otherwise): the steps that follow
    in the same process (load, dbt) start from a small footprint, not from the simulator's
    peak (measured at national scale: 0.5 GiB kept)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


HIDDEN_LIKES_SHARE = 0.04
HIDDEN_LIKES_FROM = dt.date(2021, 6, 1)


def _hide_likes_from(n: int, seed: int, T: int) -> np.ndarray:
    """Per account, the first month it hides its like counts (10 000: never). Its own
    random stream: the other draws, and so the rest of the demo, do not depend on it."""
    rng = np.random.default_rng([seed, 4])
    first = _month_index(HIDDEN_LIKES_FROM)
    hides = rng.random(n) < HIDDEN_LIKES_SHARE
    start = rng.integers(first, max(T, first + 1), n)
    return np.where(hides, start, 10_000)


@dataclass
class _Params:
    """One value per account (arrays of length n)."""
    er: np.ndarray          # engagement rate per post
    f_final: np.ndarray     # followers reached at the end of the simulation
    follows: np.ndarray
    ppd: np.ndarray         # posts per day
    created: np.ndarray     # creation month index (negative: before 2017-10)
    death: np.ndarray       # first month answered not_found (10 000: never)
    nb_start: np.ndarray    # first month of a spell as a non-business account
    nb_len: np.ndarray


def _account_params(accounts: list[Account], info: dict, rng: np.random.Generator,
                    T: int) -> _Params:
    """Each account's parameters, drawn from its category's PROFILE (in a fixed draw order)."""
    n = len(accounts)
    cat = np.array([info[a.territory_id][0] for a in accounts])
    pop = np.array([float(info[a.territory_id][2] or 0) for a in accounts])
    reach_med = np.array([PROFILE[c][1] for c in cat])
    ppd_med = np.array([PROFILE[c][2] for c in cat])
    created_med = np.array([PROFILE[c][3] for c in cat], dtype=float)
    reach = reach_med * rng.lognormal(0.0, 0.8, n)
    f_final = np.maximum(80.0, np.maximum(pop, 300.0) * reach)
    follows = np.clip(rng.lognormal(np.log(250), 1.1, n), 0, 7500).round()
    ppd = np.clip(ppd_med * rng.lognormal(0.0, 0.8, n), 0.02, 5.0)
    er = np.clip(0.025 * (f_final / 2000.0) ** -0.12 * rng.lognormal(0.0, 0.45, n), 0.003, 0.25)
    created = np.round(created_med + rng.normal(0.0, 20.0, n)).clip(-72, T - 2)
    real = np.array([not a.handle.startswith("demo.") for a in accounts])
    created[real] = np.minimum(created[real], -6)   # known accounts existed before 2017-10
    death = np.where(rng.random(n) < 0.015, rng.integers(12, max(T, 13), n), 10_000)
    for i, a in enumerate(accounts):
        if a.handle in KNOWN_DELETIONS:
            death[i] = _month_index(KNOWN_DELETIONS[a.handle])
    nb_start = np.where(rng.random(n) < 0.01, rng.integers(0, max(T, 1), n), 10_000)
    nb_len = rng.integers(2, 7, n)
    return _Params(er, f_final, follows, ppd, created, death, nb_start, nb_len)


@dataclass
class _Grid:
    """Accounts × every month from 2017-10 (arrays of shape (n, T))."""
    alive: np.ndarray
    followers: np.ndarray
    follows: np.ndarray
    n_posts: np.ndarray     # posts in the 30-day window
    n_old: np.ndarray       # older posts of the last page
    status: np.ndarray
    extra_ok: np.ndarray    # a mid-month ok snapshot too
    minute: np.ndarray
    cum_posts: np.ndarray


def _month_grid(p: _Params, rng: np.random.Generator, T: int) -> _Grid:
    """The snapshot grid: accounts × all months from 2017-10 (same draws whatever is asked)."""
    n = len(p.er)
    t = np.arange(T)
    shape = (n, T)
    age = t[None, :] - p.created[:, None]
    alive = age >= 0
    lockdown = np.where(t >= _month_index(LOCKDOWN), 1.0, 0.85)
    span = np.maximum(T - 1 - p.created, 1)[:, None]
    growth = np.clip((age + 6) / (span + 6), 0.02, 1.0) ** 0.8
    followers = np.round(p.f_final[:, None] * growth * lockdown[None, :]
                         * rng.lognormal(0.0, 0.01, shape)).astype(np.int64)
    follows_m = np.maximum(0, p.follows[:, None] + np.round(rng.normal(0, 3, shape).cumsum(1))).astype(np.int64)
    activity = np.where((t >= _month_index(LOCKDOWN)) & (t < _month_index(LOCKDOWN) + 3), 1.3, 1.0)
    n_posts = rng.poisson(p.ppd[:, None] * 30.0 * activity[None, :] * rng.lognormal(0, 0.25, shape))
    n_old = rng.integers(0, 3, shape)
    status = np.full(shape, "ok", dtype=object)
    status[t[None, :] >= p.death[:, None]] = "not_found"
    nb = (t[None, :] >= p.nb_start[:, None]) & (t[None, :] < (p.nb_start + p.nb_len)[:, None])
    status[nb & (status == "ok")] = "not_business"
    err = rng.random(shape) < 0.007
    status[err & (status == "ok")] = "error"
    extra_ok = ((status == "error") & (rng.random(shape) < 0.6)) | (rng.random(shape) < 0.03)
    minute = rng.integers(0, 180, shape)
    cum_posts = np.cumsum(n_posts * alive, axis=1) + rng.integers(5, 400, n)[:, None]
    return _Grid(alive, followers, follows_m, n_posts, n_old, status, extra_ok, minute, cum_posts)


@dataclass
class _Snapshots:
    """One entry per snapshot line of the wanted months (final ones first, then mid-month)."""
    acc: np.ndarray
    month: np.ndarray
    at: np.ndarray
    status: np.ndarray
    followers: np.ndarray
    n_media: np.ndarray
    n_in_window: np.ndarray
    n_final: int            # snapshots before this index are the month's final ones


def _snapshots(g: _Grid, wanted: np.ndarray, T: int, now: dt.datetime) -> _Snapshots:
    """Flatten the (account, month) pairs that produce a snapshot line; add the mid-month
    extra snapshots (status ok, day 15) where drawn."""
    ai, mi = np.nonzero(g.alive[:, wanted])
    mi = wanted[mi]
    month_start = np.array([np.datetime64(m.add_months(m.FIRST_MONTH, int(k)), "m") for k in range(T + 1)])
    final_at = (month_start[mi + 1] - np.timedelta64(4 * 60, "m") + g.minute[ai, mi].astype("timedelta64[m]"))
    cap = np.datetime64(now.replace(second=0, microsecond=0), "m") - np.timedelta64(60, "m")
    final_at = np.minimum(final_at, cap)
    keep = final_at >= month_start[mi] + np.timedelta64(60 * 24, "m")
    ai, mi, final_at = ai[keep], mi[keep], final_at[keep]
    xi = g.extra_ok[ai, mi] & (month_start[mi] + np.timedelta64(15 * 24 * 60, "m") < final_at)
    snap_acc = np.concatenate([ai, ai[xi]])
    snap_month = np.concatenate([mi, mi[xi]])
    snap_at = np.concatenate([final_at, month_start[mi[xi]] + np.timedelta64(14 * 24 * 60 + 600, "m")])
    snap_status = np.concatenate([g.status[ai, mi], np.full(int(xi.sum()), "ok", dtype=object)])
    # The mid-month snapshot has slightly fewer followers and fewer posts in its window.
    frac = np.concatenate([np.ones(len(ai)), np.full(int(xi.sum()), 0.99)])
    snap_f = np.round(g.followers[snap_acc, snap_month] * frac).astype(np.int64)
    is_ok = snap_status == "ok"
    n_media = np.where(is_ok, g.n_posts[snap_acc, snap_month] + g.n_old[snap_acc, snap_month], 0)
    n_in_window = np.where(is_ok, g.n_posts[snap_acc, snap_month], 0)
    return _Snapshots(snap_acc, snap_month, snap_at, snap_status, snap_f, n_media, n_in_window,
                      len(ai))


_ERROR_CODE = {"not_found": 110, "not_business": 100, "error": 2}
_ERROR_SUB = {"not_found": 2207013, "not_business": 2207065, "error": None}
_ERROR_MSG = {"not_found": "Invalid user id: the account no longer exists (demo)",
              "not_business": "The account is not a business or creator account (demo)",
              "error": "An unexpected error has occurred. Please retry your request later. (demo)"}


def _snapshots_table(sn: _Snapshots, g: _Grid, handles: np.ndarray, names: np.ndarray,
                     sel: np.ndarray) -> pa.Table:
    """The snapshot lines `sel` as an Arrow table (the JSON writer's `snaps`)."""
    acc, mon, st = sn.acc[sel], sn.month[sel], sn.status[sel]
    return pa.table({
        "sid": sel,
        "month_key": [m.month_key(m.add_months(m.FIRST_MONTH, int(x))) for x in mon],
        "handle": handles[acc],
        "fetched_at": sn.at[sel].astype("datetime64[us]"),
        "status": st.astype(str),
        "error_code": pa.array([_ERROR_CODE.get(x) for x in st], pa.int64()),
        "error_subcode": pa.array([_ERROR_SUB.get(x) for x in st], pa.int64()),
        "error_message": [_ERROR_MSG.get(x) for x in st],
        "account_id": (np.int64(17841400000000000) + acc).astype(str),
        "name": names[acc],
        "followers_count": sn.followers[sel],
        "follows_count": g.follows[acc, mon],
        "media_count": g.cum_posts[acc, mon],
    })


def _write_chunks(sn: _Snapshots, g: _Grid, er: np.ndarray, hide_from: np.ndarray,
                  handles: np.ndarray,
                  names: np.ndarray, seed: int, landing_dir: Path) -> tuple[list[Path], int]:
    """Media: one row per post, vectorised within a month; each month draws from its own
    seeded stream so a month's file does not depend on the range asked for. Months are
    generated and written in chunks (flat memory), written by two threads (DuckDB releases
    the GIL while it serialises JSON). Returns (files, posts written)."""
    files: list[Path] = []
    n_media_total = 0
    month_ids = np.unique(sn.month)
    per_chunk = max(1, CHUNK_ACCOUNT_MONTHS // max(len(handles), 1))
    chunks = [month_ids[i:i + per_chunk] for i in range(0, len(month_ids), per_chunk)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = []
        for chunk in chunks:
            parts = []
            for month_idx in chunk:
                sel = np.nonzero(sn.month == month_idx)[0]
                parts.append(_media(sel, sn.n_media[sel], sn.n_in_window[sel], sn.at,
                                    sn.followers, er[sn.acc], sn.acc, sn.month, sn.n_final,
                                    np.random.default_rng([seed, 3, int(month_idx)]),
                                    hide_from[sn.acc]))
            media = pa.table({key: np.concatenate([p[key] for p in parts]) for key in parts[0]})
            del parts                              # the Arrow table holds its own copy
            n_media_total += media.num_rows
            snaps = _snapshots_table(sn, g, handles, names, np.nonzero(np.isin(sn.month, chunk))[0])
            pending.append(pool.submit(_write_months, snaps, media, landing_dir))
            del media, snaps
            while len(pending) >= 2:               # at most 2 chunks in memory (one per writer)
                files += pending.pop(0).result()
        for f in pending:
            files += f.result()
    return files, n_media_total


def _media(sel, n_media, n_in_window, snap_at, snap_f, snap_er, snap_acc, snap_month,
           n_final, rng, snap_hide_from) -> dict[str, np.ndarray]:
    """Posts of the snapshots `sel` (indices into the snapshot arrays), one row each."""
    owner = np.repeat(sel, n_media)
    k = np.arange(len(owner)) - np.repeat(np.cumsum(n_media) - n_media, n_media)
    in_window = k < np.repeat(n_in_window, n_media)
    age_min = np.where(in_window, rng.uniform(1, 30 * 24 * 60 - 1, len(owner)),
                       rng.uniform(30 * 24 * 60 + 60, 40 * 24 * 60, len(owner)))
    posted = snap_at[owner] - age_min.astype("timedelta64[m]")
    inter = snap_f[owner] * snap_er[owner] * rng.lognormal(0.0, 0.5, len(owner))
    kind_draw = rng.random(len(owner))
    media_type = np.where(kind_draw < 0.55, "IMAGE",
                          np.where(kind_draw < 0.8, "CAROUSEL_ALBUM", "VIDEO"))
    reels_era = snap_month[owner] >= _month_index(dt.date(2020, 8, 1))
    # Media ids: deterministic and unique: account, month, snapshot kind, post number.
    media_id = (np.int64(18) * 10**17 + snap_acc[owner].astype(np.int64) * 10**11
                + snap_month[owner].astype(np.int64) * 10**7
                + (owner >= n_final).astype(np.int64) * 10**6 + k)
    product = np.where((media_type == "VIDEO") & reels_era, "REELS", "FEED")
    comments = rng.poisson(inter * 0.03).astype(np.int64)
    views = np.round(inter * rng.uniform(10, 30, len(owner))).astype(np.int64)  # drawn last
    return {
        "sid": owner,
        "k": k,
        "media_id": media_id.astype(str),
        "posted_at": posted.astype("datetime64[us]"),
        "media_type": media_type,
        "media_product_type": product,
        "like_count": np.round(inter * 0.97).astype(np.int64),
        "comments_count": comments,
        "likes_hidden": snap_month[owner] >= snap_hide_from[owner],
        "view_count": np.where(product == "REELS", views, -1),
    }


_JSON_SQL = """
copy (
    with med as (
        select sid, list({
            'id': media_id,
            'timestamp': strftime(posted_at, '%Y-%m-%dT%H:%M:%S+0000'),
            'media_type': media_type,
            'media_product_type': media_product_type,
            'like_count': case when not likes_hidden then like_count end,
            'comments_count': comments_count,
            'permalink': 'https://www.instagram.com/p/demo' || media_id || '/',
            'view_count': case when view_count >= 0 then view_count end
        } order by posted_at desc, k) as data
        from media group by sid
    )
    select
        s.month_key,
        s.handle,
        strftime(s.fetched_at, '%Y-%m-%dT%H:%M:%SZ') as fetched_at,
        'demo' as source,
        s.status,
        case when s.status <> 'ok' then {'code': s.error_code, 'subcode': s.error_subcode,
                                         'message': s.error_message} end as error,
        case when s.status = 'ok' then {
            'id': s.account_id, 'username': s.handle, 'name': s.name,
            'followers_count': s.followers_count, 'follows_count': s.follows_count,
            'media_count': s.media_count,
            'media': {'data': coalesce(med.data, [])}
        } end as business_discovery
    from snaps s left join med using (sid)
    order by s.month_key, s.handle, s.fetched_at
) to '{out}' (format json, partition_by (month_key), overwrite_or_ignore true)
"""


def _write_months(snaps: pa.Table, media: pa.Table, landing_dir: Path) -> list[Path]:
    landing_dir.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    counts = dict(zip(*np.unique(np.asarray(snaps.column("month_key").to_pylist()),
                                  return_counts=True)))
    with tempfile.TemporaryDirectory(prefix=".demo-", dir=landing_dir) as tmp:
        with duckdb.connect() as con:
            # One thread keeps line order, hence byte-identical files for a seed.
            con.execute("set threads = 1; set preserve_insertion_order = true")
            # Bounded: left at DuckDB's default (80 % of RAM), each writer kept 0.4 GiB of
            # buffers for a national-scale month and the collect step peaked near 2 GiB.
            con.execute(f"set memory_limit = '{WRITER_MEMORY}'; "
                        f"set temp_directory = '{sql_string(Path(tmp) / 'spill')}'")
            json_dir = Path(tmp) / "json"
            con.register("snaps", snaps)
            con.register("media", media)
            con.execute(_JSON_SQL.replace("{out}", sql_string(json_dir)))
        for part in sorted(json_dir.iterdir()):
            key = part.name.split("=", 1)[1]
            # gzip here rather than in DuckDB's COPY (twice as fast: zlib releases the GIL,
            # so the two writer threads compress in parallel); mtime=0 keeps the bytes
            # identical for a seed.
            written = part / "demo.ndjson.gz"
            with open(written, "wb") as raw, \
                    gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                  compresslevel=DEMO_GZIP_LEVEL) as fout:
                for c in sorted(part.glob("*.json")):
                    with open(c, "rb") as fin:
                        shutil.copyfileobj(fin, fout, 1 << 20)
            out.append(_publish(written, landing_dir / key, int(counts[key])))
    return out


def _publish(written: Path, dest_dir: Path, lines: int) -> Path:
    """Land the demo file of one month. The demo is the one source whose data can be drawn
    again: an identical file is left as it is; a different one (another registry, or a new
    month that extends the simulated trajectories) replaces the demo's own file and its
    manifest line. Files of any other source are never touched."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / DEMO_FILE
    if dest.is_file() and landing.sha256_of(dest) == landing.sha256_of(written):
        listed = dataclasses.replace(landing.describe(dest, recorded_by="demo", lines=False),
                                     lines=lines)
        landing.record(dest_dir, [listed])          # no-op when already listed
    else:
        landing.publish(written, dest, recorded_by="demo", exclusive=False, lines=lines)
    legacy = dest_dir / LEGACY_DEMO_FILE
    if legacy.is_file():     # the same data, uncompressed: superseded by demo.ndjson.gz
        legacy.unlink()
        landing.forget(dest_dir, [LEGACY_DEMO_FILE])
    return dest
