"""Load landing files (docs/landing-format.md) into the `raw` schema.

Everything is bulk SQL inside DuckDB (no Python row loop over snapshots): files are read
with `read_text`, split into numbered lines, validated with JSON functions, and each bad
line is kept verbatim in `raw.rejected_lines` with its file, line number and reason.
Loading is idempotent per month: the month's rows are replaced in one transaction.
"""
from __future__ import annotations

import codecs
import datetime as dt
import gzip
import json
import logging
import os
import shutil
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from dagster_project.archive import landing
from dagster_project.archive.landing import month_files
from dagster_project.load.schema import ensure_schema
from dagster_project.registry.accounts import NORMALIZE_HANDLE_SQL
from dagster_project.warehouse import connect, record_change, transaction

log = logging.getLogger(__name__)
LOAD_WORKERS = 2
MAX_COUNT = 1_000_000_000  # followers / likes above this are not a collectivité's account
FUTURE_TOLERANCE = "interval 10 minutes"
MEDIA_AFTER_SNAPSHOT_TOLERANCE = "interval 1 hour"
INVALID_UTF8 = "invalid UTF-8 (bad bytes shown as U+FFFD)"

_J = "JSON"
_LINE_STRUCTURE = json.dumps({
    "handle": _J, "fetched_at": _J, "source": _J, "status": _J,
    "error": {"code": _J, "subcode": _J, "message": _J},
    "business_discovery": {
        "id": _J, "username": _J, "name": _J, "followers_count": _J, "follows_count": _J,
        "media_count": _J,
        "media": {"data": [{k: _J for k in ("id", "timestamp", "media_type", "media_product_type",
                                             "like_count", "comments_count", "permalink",
                                             "view_count")}]},
    },
})
# Type and text of a JSON fragment (from_json leaves typed "JSON"; JSON null arrives as NULL).
_MACROS = r"""
create or replace temp macro _jtype_text(f) as case
    when f is null then null
    when f[1] = '"' then 'VARCHAR'
    when f[1] = '-' or f[1] between '0' and '9' then (case
        when contains(f, '.') or contains(f, 'e') or contains(f, 'E') then 'DOUBLE'
        when f[1] = '-' then 'BIGINT' else 'UBIGINT' end)
    when f[1] = '{' then 'OBJECT'
    when f[1] = '[' then 'ARRAY'
    when f in ('true', 'false') then 'BOOLEAN'
    else 'DOUBLE' end;
create or replace temp macro _jstr_text(f) as case
    when f is null then null
    when f[1] = '"' then (case when contains(f, '\') then json_extract_string(f, '$') else f[2:-2] end)
    else f end;
create or replace temp macro _jtype(j) as _jtype_text(j::varchar);
create or replace temp macro _jstr(j) as _jstr_text(j::varchar);
"""
_INT_TYPES = "('UBIGINT', 'BIGINT')"
_TZ_RE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$"
# The one rule for a post's permalink (the site links to it): an Instagram post, reel or TV
# URL, matched whole: https, host instagram.com or www.instagram.com (any case), no
# user@, no port, path /p|reel|reels|tv/<code>[/], an optional query (?igsh=…),
# no fragment. Anything else (javascript:, data:, another host…) is stored as NULL, the
# line still loads, and the drop is counted (raw.load_files.permalinks_dropped).
PERMALINK_RE = (r"(?i:https)://(?i:(?:www\.)?instagram\.com)"
                r"/(?:p|reel|reels|tv)/[A-Za-z0-9_-]+/?(?:\?[A-Za-z0-9._~%!$&()*+,;=:@/?-]*)?")
PERMALINK_DROPPED = "permalink not an Instagram post URL: dropped"
_MACROS += f"create or replace temp macro _is_post_url(u) as regexp_full_match(u, '{PERMALINK_RE}');"


@dataclass
class MonthLoad:
    month: dt.date
    files: int = 0
    lines: int = 0
    loaded: int = 0
    rejected: int = 0
    media: int = 0
    permalinks_dropped: int = 0      # soft fix: the post loads, its permalink is NULL


@dataclass
class LoadResult:
    months: list[MonthLoad] = field(default_factory=list)
    rejected_samples: list[tuple[str, int, str]] = field(default_factory=list)
    corrected_samples: list[tuple[str, int, str]] = field(default_factory=list)  # loaded, fixed

    @property
    def permalinks_dropped(self) -> int:
        return sum(x.permalinks_dropped for x in self.months)

    @property
    def loaded(self) -> int:
        return sum(x.loaded for x in self.months)

    @property
    def rejected(self) -> int:
        return sum(x.rejected for x in self.months)

    @property
    def media(self) -> int:
        return sum(x.media for x in self.months)

    @property
    def lines(self) -> int:
        return sum(x.lines for x in self.months)


def _list_new_files(landing_dir: Path, month: dt.date) -> None:
    """Files placed by hand get their manifest line when first met (the sources list
    theirs when they write them). A read-only archive is loaded all the same."""
    folder = landing.month_dir(landing_dir, month)
    files = landing.iter_month_files(folder)
    if not files:
        return
    listed = landing.read_manifest(folder)
    new = [landing.describe(p, recorded_by="loader") for p in files if p.name not in listed]
    try:
        landing.record(folder, new)
    except OSError as exc:
        log.warning("could not list %d new landing file(s) of %s in %s: %s",
                    len(new), folder, landing.MANIFEST, exc)


def _gunzip(src: Path, dest_dir: Path) -> tuple[Path | None, str | None]:
    """Decompress to a temp file; (None, reason) when the file is not valid gzip."""
    dest = dest_dir / (src.name[:-3] + f".{abs(hash(str(src)))}")
    try:
        with gzip.open(src, "rb") as fin, open(dest, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
    except (OSError, EOFError, zlib.error) as exc:
        return None, f"not a valid gzip file: {exc}"
    return dest, None


def _utf8_lines(src: Path, dest_dir: Path) -> tuple[Path, list[int]]:
    """(src, []) when the file is valid UTF-8 (read_text refuses anything else); otherwise a
    copy with the bad bytes replaced by U+FFFD and the 1-based numbers of the lines that had
    them, so that only those lines are rejected."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(src, "rb") as fh:
            while chunk := fh.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        return src, []
    except UnicodeDecodeError:
        pass
    fd, name = tempfile.mkstemp(prefix="utf8-", suffix=".ndjson", dir=dest_dir)
    bad: list[int] = []
    with open(src, "rb") as fin, open(fd, "wb") as fout:
        for number, raw in enumerate(fin, start=1):  # split on b"\n", like the loader
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                bad.append(number)
                raw = raw.decode("utf-8", "replace").encode("utf-8")
            fout.write(raw)
    return Path(name), bad


def _chunk_months(files, file_errors) -> list[dt.date]:
    return sorted({f[1] for f in files} | {e[0] for e in file_errors})


def _chunks(files, file_errors, budget: int = 64 << 20):
    """Group files into chunks of whole months of about `budget` bytes."""
    by_month: dict[dt.date, list] = {}
    for f in files:
        by_month.setdefault(f[1], []).append(f)
    errors_by_month: dict[dt.date, list] = {}
    for e in file_errors:
        errors_by_month.setdefault(e[0], []).append(e)
    chunk, errs, size = [], [], 0
    for month in sorted(set(by_month) | set(errors_by_month)):
        chunk += by_month.get(month, [])
        errs += errors_by_month.get(month, [])
        # the size read (a .gz file is read decompressed), not the size stored
        size += sum(os.path.getsize(f[0]) for f in by_month.get(month, []))
        if size >= budget:
            yield chunk, errs
            chunk, errs, size = [], [], 0
    if chunk or errs:
        yield chunk, errs


def load_months(warehouse: Path, landing_dir: Path, months: list[dt.date],
                now: dt.datetime | None = None) -> LoadResult:
    """Replace the raw rows of `months` with what their landing folders hold now."""
    landing_dir = Path(landing_dir)
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None)
    result = LoadResult()
    with tempfile.TemporaryDirectory(prefix="obs-load-") as tmp, connect(warehouse) as con:
        ensure_schema(con)
        if months:  # before writing: a load that fails half-way is still published again
            record_change(con, min(months), max(months), "load")
        files: list[tuple[str, dt.date, str, int]] = []   # (path to read, month, rel name, bytes)
        file_errors: list[tuple[dt.date, str, str]] = []
        line_errors: list[tuple[dt.date, str, int, str]] = []
        todo = []
        for month in months:
            _list_new_files(landing_dir, month)
            todo += [(month, path) for path in month_files(landing_dir, month)]

        def prepare(month: dt.date, path: Path):
            """(readable path, bad lines, error): gunzip (zlib releases the GIL: two files
            at once) and UTF-8 check."""
            readable = path
            if path.name.endswith(".gz"):
                readable, err = _gunzip(path, Path(tmp))
                if err:
                    return None, [], err
            readable, bad_lines = _utf8_lines(Path(readable), Path(tmp))
            return readable, bad_lines, None

        with ThreadPoolExecutor(max_workers=LOAD_WORKERS) as pool:
            prepared = list(pool.map(lambda t: prepare(*t), todo))
        for (month, path), (readable, bad_lines, err) in zip(todo, prepared):
            rel = str(path.relative_to(landing_dir))
            if err:
                file_errors.append((month, rel, err))
                continue
            line_errors += [(month, rel, n, INVALID_UTF8) for n in bad_lines]
            files.append((str(readable), month, rel, path.stat().st_size))
        # Chunks of whole months (~64 MB) keep memory flat whatever the range; each chunk
        # replaces its months in one transaction (a month is all or nothing), and two
        # chunks run at once on two connections: one chunk's SQL uses a single core.
        chunks = [(_chunk_months(c_files, c_errors), c_files, c_errors)
                  for c_files, c_errors in _chunks(files, file_errors)]
        with_files = {mo for chunk_months, _, _ in chunks for mo in chunk_months}
        # Months whose folder is now empty or gone are emptied too.
        _replace_months(con, [mo for mo in months if mo not in with_files], [], [], [], now)
        with ThreadPoolExecutor(max_workers=LOAD_WORKERS) as pool:
            futures = [pool.submit(_replace_months, con.cursor(), chunk_months, c_files, c_errors,
                                   line_errors, now, True)
                       for chunk_months, c_files, c_errors in chunks]
            corrected = sorted(s for future in futures for s in future.result())
        stats = {r[0]: r[1:] for r in con.execute("""
            select month, count(distinct file), sum(lines), sum(loaded), sum(rejected),
                   sum(permalinks_dropped)
            from raw.load_files where month = any($1) group by month""", [months]).fetchall()}
        media = dict(con.execute("""select month, count(*) from raw.media
            where month = any($1) group by month""", [months]).fetchall())
        for month in months:
            f, lines, loaded, rejected, dropped = stats.get(month, (0, 0, 0, 0, 0))
            result.months.append(MonthLoad(month, int(f or 0), int(lines or 0), int(loaded or 0),
                                           int(rejected or 0), int(media.get(month, 0)),
                                           int(dropped or 0)))
        result.corrected_samples = corrected[:20]
        result.rejected_samples = [tuple(r) for r in con.execute("""
            select file, line, reason from raw.rejected_lines where month = any($1)
            order by file, line limit 20""", [months]).fetchall()]
    return result


def _replace_months(con, months, files, file_errors, line_errors, now, close=False) -> list:
    """Delete `months` from the raw tables and load `files` in their place, atomically;
    returns the first soft fixes (file, line, note) of the lines loaded."""
    try:
        con.execute("set TimeZone = 'UTC'")
        with transaction(con):
            for table in ("snapshots", "media", "rejected_lines", "load_files"):
                con.execute(f"delete from raw.{table} where month = any($1)", [months])
            if files or file_errors:
                con.execute("create or replace temp table _line_errors "
                            "(month date, file varchar, line integer, reason varchar)")
                mine = [e for e in line_errors if e[0] in set(months)]
                if mine:
                    con.executemany("insert into _line_errors values (?, ?, ?, ?)", mine)
                _stage_lines(con, files, file_errors, now)
                _insert(con, now)
                return con.execute("""select file, line, 'media ' || media_id || ': ' || $1
                    from _dropped_permalinks order by all limit 20""", [PERMALINK_DROPPED]).fetchall()
        return []
    finally:
        if close:
            con.close()


def _stage_lines(con, files, file_errors, now) -> None:
    """Validate one chunk of files into slim temp tables (the raw text stays in `_lines`),
    step by step: each step is one function and builds the temp tables the next reads."""
    con.execute(_MACROS)
    con.execute(NORMALIZE_HANDLE_SQL)
    _read_lines(con, files, file_errors)
    _parse_lines(con)
    _validate_media(con)
    _validate_snapshots(con, now)
    _reject_duplicate_snapshots(con)
    _reject_media_after_snapshot(con)


def _read_lines(con, files, file_errors) -> None:
    """Read lines: `_files` (one row per file, `fid`), `_file_errors` (unreadable files) and
    `_lines` (month, file, line number, `lid` key, raw text) without blank lines."""
    con.execute("create or replace temp table _files "
                "(path varchar, month date, file varchar, bytes bigint, fid bigint)")
    if files:
        con.executemany("insert into _files values (?, ?, ?, ?, ?)",
                        [(*f, i) for i, f in enumerate(files)])
    con.execute("create or replace temp table _file_errors (month date, file varchar, reason varchar)")
    if file_errors:
        con.executemany("insert into _file_errors values (?, ?, ?)", file_errors)
    paths = [f[0] for f in files]
    if paths:
        con.execute("""
            create or replace temp table _lines as
            -- lid: an integer key per line (joins on it, not on file names)
            select f.month, f.file, s.line, f.fid * 100000000 + s.line as lid, s.raw
            from (
                select filename,
                       unnest(generate_series(1, len(parts))) as line,
                       unnest(parts) as raw
                from (select filename, string_split(content, chr(10)) as parts
                      from read_text($1))
            ) s join _files f on f.path = s.filename
            -- blank lines (JSON whitespace only: the lone CR of a blank CRLF line too) are
            -- skipped; trim() is only evaluated on short lines: it is slow on long strings
            where not (length(s.raw) <= 16 and trim(s.raw, chr(32) || chr(9) || chr(13)) = '')
        """, [paths])
    else:
        con.execute("create or replace temp table _lines "
                    "(month date, file varchar, line integer, lid bigint, raw varchar)")


def _parse_lines(con) -> None:
    """Parse: `_doc` (one JSON parse per line) and `_parsed` (each field's JSON type and text)."""
    # One JSON parse per line: from_json into a struct whose leaves are raw JSON fragments,
    # so each field's type can still be checked ("15k" is a string, not a count).
    con.execute(f"""
        create or replace temp table _doc as
        select month, file, line, lid, d is not null or json_valid(raw) as is_json,
               d is not null as is_object, d,
               case when d is null and not json_valid(raw) then ends_with(rtrim(raw), chr(125)) end
                   as ends_with_brace
        from (
            -- try(): invalid JSON gives NULL instead of failing the load (one parse per line)
            select month, file, line, lid, raw,
                   case when regexp_matches(raw, '^\\s*\\{{')
                        then try(from_json(raw, '{_LINE_STRUCTURE}')) end as d
            from _lines
        )
    """)
    fields = {
        "handle": "d.handle", "fetched_at": "d.fetched_at", "source": "d.source",
        "status": "d.status", "error_code": "d.error.code", "error_subcode": "d.error.subcode",
        "error_message": "d.error.message", "account_id": "d.business_discovery.id",
        "username": "d.business_discovery.username", "account_name": "d.business_discovery.name",
        "followers_count": "d.business_discovery.followers_count",
        "follows_count": "d.business_discovery.follows_count",
        "media_count": "d.business_discovery.media_count",
    }
    cols = ",\n".join(f"_jtype({e}) as t_{n}, _jstr({e}) as {n}" for n, e in fields.items())
    con.execute(f"""
        create or replace temp table _parsed as
        select month, file, line, lid, is_json, ends_with_brace,
               case when is_object then 'OBJECT' when is_json then 'OTHER' end as t_root,
               case when d.business_discovery is not null then 'OBJECT' end as t_bd,
               {cols}
        from _doc
    """)


def _validate_media(con) -> None:
    """Validate media: `_media` (one row per post of each line, typed) and `_media_problems`
    (the first problem of each line's posts, if any: it rejects the whole line)."""
    con.execute(f"""
        create or replace temp table _media as
        select lid, t_item,
               _jtype_text(id_j) as t_id, _jtype_text(likes_j) as t_likes,
               _jtype_text(comments_j) as t_comments, _jtype_text(views_j) as t_views,
               _jstr_text(id_j) as media_id, ts_raw,
               _jstr_text(type_j) as media_type, _jstr_text(product_j) as media_product_type,
               _jstr_text(likes_j) as likes_raw, _jstr_text(comments_j) as comments_raw,
               _jstr_text(permalink_j) as permalink_raw, _jstr_text(views_j) as views_raw,
               _is_post_url(_jstr_text(permalink_j)) as permalink_ok,  -- NULL: no permalink
               timezone('UTC', coalesce(
                   -- the Graph API's own format first (fast), then any ISO time with a zone
                   try_strptime(ts_raw, '%Y-%m-%dT%H:%M:%S%z'),
                   case when regexp_matches(ts_raw, '{_TZ_RE}')
                        then try_cast(ts_raw as timestamptz) end)) as posted_at
        from (
            -- each JSON fragment is turned into text once
            select lid,
                   case when item.id is null and item.timestamp is null then 'OTHER' else 'OBJECT' end as t_item,
                   item.id::varchar as id_j, _jstr_text(item.timestamp::varchar) as ts_raw,
                   item.media_type::varchar as type_j, item.media_product_type::varchar as product_j,
                   item.like_count::varchar as likes_j, item.comments_count::varchar as comments_j,
                   item.permalink::varchar as permalink_j, item.view_count::varchar as views_j
            from (
                select lid, unnest(d.business_discovery.media.data) as item
                from _doc where d.business_discovery.media.data is not null
            )
        )
    """)
    con.execute(f"""
        create or replace temp table _media_problems as
        select lid, min(problem) as problem from (
            select lid,
                case
                    when t_item is distinct from 'OBJECT' then 'media item is not an object'
                    when t_id is null or t_id not in ('VARCHAR', 'UBIGINT', 'BIGINT') then 'media item without id'
                    when posted_at is null then 'media ' || media_id || ': timestamp ' || coalesce('"' || ts_raw || '"', 'missing') || ' is not an ISO time with time zone'
                    when t_likes is not null and t_likes not in {_INT_TYPES} then 'media ' || media_id || ': like_count is not an integer: ' || coalesce(likes_raw, 'null')
                    when t_comments is not null and t_comments not in {_INT_TYPES} then 'media ' || media_id || ': comments_count is not an integer: ' || coalesce(comments_raw, 'null')
                    when t_views is not null and t_views not in {_INT_TYPES} then 'media ' || media_id || ': view_count is not an integer: ' || coalesce(views_raw, 'null')
                    when try_cast(likes_raw as double) < 0 or try_cast(comments_raw as double) < 0 or try_cast(views_raw as double) < 0 then 'media ' || media_id || ': negative count'
                    when try_cast(likes_raw as double) > {MAX_COUNT} or try_cast(comments_raw as double) > {MAX_COUNT} then 'media ' || media_id || ': absurd count (> 1e9)'
                end as problem
            from _media
        ) where problem is not null
        group by all
    """)


def _count_checks_sql() -> str:
    """The `case` branches for the snapshot counts of an `ok` line: integers, ≥ 0, ≤ 1e9."""
    int_checks = []
    for col in ("followers_count", "follows_count", "media_count"):
        int_checks.append(
            f"when status = 'ok' and (t_{col} is null or t_{col} not in {_INT_TYPES}) "
            f"then '{col} is not an integer: ' || coalesce({col}, 'missing')")
        int_checks.append(
            f"when status = 'ok' and try_cast({col} as double) < 0 then '{col} is negative: ' || {col}")
        int_checks.append(
            f"when status = 'ok' and try_cast({col} as double) > {MAX_COUNT} "
            f"then '{col} is absurd (> 1e9): ' || {col}")
    return "\n                ".join(int_checks)


def _validate_snapshots(con, now) -> None:
    """Validate snapshots: `_checked`, every line with its normalised handle, UTC fetch time
    and `reason` (NULL: loaded). The first problem found is the reason given."""
    int_checks_sql = _count_checks_sql()
    con.execute(f"""
        create or replace temp table _checked as
        with ts as (
            select p.*,
                   case when regexp_matches(fetched_at, '{_TZ_RE}')
                        then timezone('UTC', try_cast(fetched_at as timestamptz)) end as fetched_utc,
                   normalize_handle(handle) as handle_norm
            from _parsed p
        )
        select ts.*,
            case
                when le.reason is not null then le.reason
                when not is_json then 'invalid JSON' || case when not ends_with_brace then ' (truncated line?)' else '' end
                when t_root <> 'OBJECT' then 'not a JSON object'
                when t_handle is null then 'missing field handle'
                when t_handle <> 'VARCHAR' then 'handle is not a string'
                when not regexp_matches(handle_norm, '^[a-z0-9._]{{1,30}}$') then 'invalid handle "' || handle || '"'
                when t_fetched_at is null then 'missing field fetched_at'
                when t_fetched_at <> 'VARCHAR' then 'fetched_at is not a string'
                when not regexp_matches(fetched_at, '{_TZ_RE}') then 'fetched_at "' || fetched_at || '" has no time zone or is not an ISO time'
                when fetched_utc is null then 'fetched_at "' || fetched_at || '" is not a valid time'
                when fetched_utc < month or fetched_utc >= month + interval 1 month
                    then 'fetched_at ' || strftime(fetched_utc, '%Y-%m-%dT%H:%M:%SZ') || ' is outside the month folder ' || strftime(month, '%Y-%m')
                when fetched_utc > $now + {FUTURE_TOLERANCE} then 'fetched_at ' || strftime(fetched_utc, '%Y-%m-%dT%H:%M:%SZ') || ' is in the future'
                when t_source is null then 'missing field source'
                when source not in ('graph_api', 'demo', 'import') then 'unknown source "' || source || '"'
                when t_status is null then 'missing field status'
                when status not in ('ok', 'not_found', 'not_business', 'error') then 'unknown status "' || status || '"'
                when status = 'ok' and t_bd is distinct from 'OBJECT' then 'status ok without a business_discovery object'
                {int_checks_sql}
                when mp.problem is not null then mp.problem
                when t_error_code is not null and t_error_code not in {_INT_TYPES} then 'error.code is not an integer'
            end as reason
        from ts left join _media_problems mp using (lid)
            left join _line_errors le using (month, file, line)
    """, {"now": now})


def _reject_duplicate_snapshots(con) -> None:
    """Later copies of the same snapshot (handle, fetched_at) are rejected; the first stays."""
    con.execute("""
        update _checked c
        set reason = 'duplicate snapshot of ' || c.handle_norm || ' at '
                     || strftime(c.fetched_utc, '%Y-%m-%dT%H:%M:%SZ') || ' (first at ' || d.first_seen || ')'
        from (
            select lid, first_seen from (
                select lid,
                       row_number() over w as n,
                       first_value(file || ':' || line) over w as first_seen
                from _checked where reason is null
                window w as (partition by handle_norm, fetched_utc order by file, line)
            ) where n > 1
        ) d
        where c.lid = d.lid
    """)


def _reject_media_after_snapshot(con) -> None:
    """Media at most 1 h after the snapshot is clock skew; later is inconsistent data."""
    con.execute(f"""
        update _checked c set reason = 'media ' || x.media_id || ' posted at ' || strftime(x.posted_at, '%Y-%m-%dT%H:%M:%SZ') || ' after the snapshot (fetched_at ' || strftime(c.fetched_utc, '%Y-%m-%dT%H:%M:%SZ') || ')'
        from (
            select md.lid, arg_max(md.media_id, md.posted_at) as media_id, max(md.posted_at) as posted_at
            from _media md join _checked k using (lid)
            where k.reason is null and md.posted_at > k.fetched_utc + {MEDIA_AFTER_SNAPSHOT_TOLERANCE}
            group by all
        ) x
        where c.lid = x.lid
    """)


def _insert(con, now) -> None:
    """Insert: the valid snapshots and their posts, the rejected lines, one row per file."""
    _insert_snapshots(con, now)
    _insert_media(con)
    _insert_rejections(con, now)


def _insert_snapshots(con, now) -> None:
    """Valid lines → raw.snapshots (handle normalised, times in UTC, posts counted)."""
    con.execute("""
        insert into raw.snapshots
        select month, file, line, handle_norm, fetched_utc, source, status,
               try_cast(error_code as integer), try_cast(error_subcode as integer), error_message,
               account_id, username, account_name,
               try_cast(followers_count as bigint), try_cast(follows_count as bigint),
               try_cast(media_count as bigint),
               case when status = 'ok' then coalesce(n.media, 0) end,
               $now
        from _checked c left join (select lid, count(distinct media_id) as media from _media group by lid) n
            using (lid)
        where reason is null
        order by month, handle_norm, fetched_utc
    """, {"now": now})


def _insert_media(con) -> None:
    """Posts of valid lines → raw.media; the same post twice in a snapshot (overlapping
    pages) counts once: the first copy."""
    # (A hash aggregate finds the rare duplicates; a window over every row costs 3x more.)
    con.execute("""
        create or replace temp table _media_dups as
        select lid, media_id, min(rowid) as keep
        from _media group by all having count(*) > 1
    """)
    con.execute("""
        create or replace temp table _dropped_permalinks as
        select c.month, c.file, c.line, md.media_id
        from _media md join _checked c using (lid)
        left join _media_dups d using (lid, media_id)
        where not md.permalink_ok and c.reason is null and (d.keep is null or md.rowid = d.keep)
    """)
    con.execute("""
        insert into raw.media by name
        select c.month, c.file, c.line, c.handle_norm as handle, c.fetched_utc as fetched_at,
               md.media_id, md.posted_at, md.media_type, md.media_product_type,
               -- an omitted (or null) count stays null: hidden likes are not 0 likes
               try_cast(md.likes_raw as bigint) as like_count,
               try_cast(md.comments_raw as bigint) as comments_count,
               case when md.permalink_ok then md.permalink_raw end as permalink,
               try_cast(md.views_raw as bigint) as view_count
        from _media md join _checked c using (lid)
        left join _media_dups d using (lid, media_id)
        where c.reason is null and (d.keep is null or md.rowid = d.keep)
    """)


def _insert_rejections(con, now) -> None:
    """Rejected lines (verbatim, with the reason) → raw.rejected_lines; unreadable files
    (line 0) too; one row per file with its counts → raw.load_files."""
    con.execute("""
        insert into raw.rejected_lines
        select c.month, c.file, c.line, c.reason, l.raw, $now
        from _checked c join _lines l using (lid)
        where c.reason is not null
        union all
        select month, file, 0, reason, null, $now from _file_errors
    """, {"now": now})
    con.execute("""
        insert into raw.load_files
            (month, file, bytes, lines, loaded, rejected, loaded_at, permalinks_dropped)
        select f.month, f.file, f.bytes, coalesce(c.lines, 0), coalesce(c.loaded, 0),
               coalesce(c.rejected, 0), $now, coalesce(p.n, 0)
        from _files f left join (
            select file, count(*) as lines, count(*) filter (where reason is null) as loaded,
                   count(*) filter (where reason is not null) as rejected
            from _checked group by file
        ) c using (file)
        left join (select file, count(*) as n from _dropped_permalinks group by file) p using (file)
        union all
        select month, file, null, 0, 0, 1, $now, 0 from _file_errors
    """, {"now": now})
