"""Security: handles never reach a URL unvalidated, the token never leaks, spreadsheet
formulas are neutralised, no SQL is built by pasting user strings."""
from __future__ import annotations

import ast
import csv
import gzip
import io
import json
import logging
import re
import traceback
import urllib.parse
from pathlib import Path

import duckdb
import pytest
from fake_graph_api import FakeGraphAPI, make_media
from fixture_warehouse import MONTHS
from rel_helpers import dumps, query, rejected, rejected_raw, snapshot, write

from dagster_project.collect.graph_api import (
    CollectorOptions,
    TokenError,
    build_fields,
    collect_month,
)
from dagster_project.load.registry import load_registry
from dagster_project.load.snapshots import load_months
from dagster_project.months import current_month
from dagster_project.publish.exports.csv_export import export_month
from dagster_project.registry.accounts import Account, read_registry
from dagster_project.registry.territories import territory_ids
from dagster_project.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "EAAGrelTest-S3CR3Tt0ken-4f9b2c7d1e"
SECRET_PARTS = (TOKEN, urllib.parse.quote(TOKEN), "S3CR3Tt0ken")
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def api():
    fake = FakeGraphAPI(token=TOKEN)
    with fake:
        yield fake


@pytest.fixture
def settings(api, tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", dagster_home=tmp_path / "data" / "dagster",
                    accounts_file=tmp_path / "accounts.csv", graph_url=api.url,
                    instagram_user_id=api.user_id, access_token=TOKEN)


def _opts() -> CollectorOptions:
    return CollectorOptions(max_attempts=2, backoff_scale=0.001, connect_timeout=2,
                            read_timeout=5)


# --------------------------------------------------------------------------- (1) handles → URL

BAD_HANDLES = ["gers)", "gers{id}", "gers,paris", "gers&x=1", "haut Savoie", "gers}",
               "x).limit(1){id", "gers%29", "gers/../1", "gers?fields=id", "gers#", "gers\tx"]


def test_registry_rejects_url_breaking_handles_and_they_are_never_sent(api, settings, tmp_path):
    api.add_account("gersledepartement", media=make_media(2))
    api.add_account("paris_maville", media=make_media(2))
    registry = tmp_path / "accounts.csv"
    with open(registry, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["handle", "territory_id", "source_url", "checked_on"])
        w.writerow(["gersledepartement", "departement:32", "", ""])
        for i, handle in enumerate(BAD_HANDLES):
            w.writerow([handle, f"departement:{10 + i}", "", ""])
        w.writerow(["paris_maville", "departement:75", "", ""])
    accounts, rejected_rows = read_registry(registry, territory_ids())
    assert [a.handle for a in accounts] == ["gersledepartement", "paris_maville"]
    assert [r.reason.split(": ", 1)[1] for r in rejected_rows] == [
        f"invalid handle {h.strip()!r} (expected 1-30 characters among a-z 0-9 . _)"
        for h in BAD_HANDLES]

    # even when a caller bypasses the registry, the collector refuses them
    direct = accounts + [Account(h, "departement:01") for h in BAD_HANDLES]
    result = collect_month(direct, current_month(), settings, options=_opts())
    assert result.ok == 2
    assert result.invalid_handles == BAD_HANDLES
    assert set(api.requests_by_handle) == {"gersledepartement", "paris_maville"}
    for path in api.raw_paths:
        fields = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)["fields"]
        assert len(fields) == 1
        handle = re.match(r"business_discovery\.username\(([^)]*)\)", fields[0]).group(1)
        assert fields[0] == build_fields(handle, None, CollectorOptions().page_size)
        decoded = urllib.parse.unquote(path)
        assert not any(bad.strip() in decoded for bad in BAD_HANDLES), path
    for bad in BAD_HANDLES:
        with pytest.raises(ValueError):
            build_fields(bad)


# --------------------------------------------------------------------------- (2) token leaks

def _scan_tree(folder: Path) -> list[str]:
    hits = []
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p.name.endswith(".gz"):      # landing files: scan their text, not gzip bytes
                data = gzip.decompress(data)
            hits += [f"{p}: {s}" for s in SECRET_PARTS if s.encode() in data]
    return hits


def _scan_duckdb(db: Path) -> list[str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cols = con.execute("""select table_schema, table_name, column_name
                              from information_schema.columns
                              where data_type = 'VARCHAR'""").fetchall()
        hits = []
        for schema, tbl, col in cols:
            for s in SECRET_PARTS:
                n = con.execute(f'select count(*) from "{schema}"."{tbl}" '
                                f'where contains("{col}", ?)', [s]).fetchone()[0]
                if n:
                    hits.append(f"{schema}.{tbl}.{col}: {s}")
        return hits, len(cols)
    finally:
        con.close()


def _text_of_exception(exc: BaseException) -> str:
    parts = []
    while exc is not None:
        parts += [str(exc), repr(exc), repr(exc.args), repr(vars(exc))]
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


def test_token_never_leaks_whatever_the_server_does(api, settings, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    api.add_account("ok_account", media=make_media(3))
    api.add_account("echo_token", echo_token=True)           # message quotes the token
    api.add_account("always_5xx", permanent_5xx=True)
    api.add_account("burst_5xx", fail_5xx=5)                 # JSON 500 / HTML 502, then gives up
    api.add_account("garbage", garbage=True)
    api.add_account("conn_reset", reset=True)
    api.add_account("bad_param", bad_param=True)
    api.add_account("not_business", not_business=True)
    handles = ["ok_account", "echo_token", "always_5xx", "burst_5xx", "garbage", "conn_reset",
               "bad_param", "not_business", "unknown_user"]
    result = collect_month([Account(h, "departement:32") for h in handles], current_month(),
                           settings, options=_opts())
    assert (result.ok, result.not_found, result.not_business, result.error) == (1, 1, 1, 6)
    lines = [json.loads(x) for p in settings.landing_dir.rglob("*.ndjson.gz")
             for x in gzip.decompress(p.read_bytes()).decode("utf-8").splitlines()]
    echo = next(x for x in lines if x["handle"] == "echo_token")
    assert echo["error"]["message"] == "Invalid parameter (token *** was used)"

    # 190 with the token echoed in the message: the whole collection stops
    api.clear_scenario("echo_token")
    api.add_account("expired", token_error=True)
    with pytest.raises(TokenError) as info:
        collect_month([Account("expired", "departement:32")], current_month(), settings,
                      options=_opts())
    assert "Cannot parse access token: ***" in str(info.value)
    exc_text = _text_of_exception(info.value) + "".join(
        traceback.format_exception(info.value))

    # every request after the 2nd answers 190
    api.expire_token_after = api.total_requests + 1
    api.add_account("late1", media=make_media(1))
    api.add_account("late2", media=make_media(1))
    with pytest.raises(TokenError) as info2:
        collect_month([Account(h, "departement:32") for h in ("late1", "late2")],
                      current_month(), settings, options=_opts(), max_in_flight=1)
    exc_text += _text_of_exception(info2.value)

    # load what landed into a warehouse under the data dir, then scan everything
    db = settings.data_dir / "warehouse.duckdb"
    loaded = load_months(db, settings.landing_dir, [current_month()])
    assert loaded.loaded >= 9
    logs = caplog.text + "".join(repr(r.args) + r.getMessage() for r in caplog.records)
    assert not [s for s in SECRET_PARTS if s in logs], "token in the logs"
    assert not [s for s in SECRET_PARTS if s in exc_text], "token in an exception"
    assert not [s for s in SECRET_PARTS if s in repr(result) + json.dumps(result.as_metadata())]
    assert _scan_tree(settings.data_dir) == [], "token in a file under the data dir"
    hits, n_cols = _scan_duckdb(db)
    assert hits == [] and n_cols > 20
    assert api.auth_headers == {f"Bearer {TOKEN}"}
    assert not any(s in p for p in api.raw_paths for s in SECRET_PARTS + ("access_token",))


# --------------------------------------------------------------------------- (3) CSV formulas

FORMULAS = ["=HYPERLINK(\"http://evil\",\"x\")", "+33 Ville", "-2+3", "@SUM(A1:A9)",
            "\tTabulée", "\rRetour"]


@pytest.mark.parametrize("dialect", ["excel-fr", "rfc4180"])
def test_formula_cells_are_neutralised(fixture_warehouse_copy, tmp_path, dialect):
    wh = fixture_warehouse_copy
    july = MONTHS[-1]
    con = duckdb.connect(str(wh))
    try:
        ids = [r[0] for r in con.execute("""
            select territory_id from marts.fct_monthly_rankings
            where month = ? and category = 'departement' and in_top_n order by rank limit ?""",
            [july, len(FORMULAS)]).fetchall()]
        for tid, text in zip(ids, FORMULAS, strict=True):
            con.execute("update marts.fct_monthly_rankings set territory_name = ? "
                        "where territory_id = ?", [text, tid])
        alert_ids = [r[0] for r in con.execute(
            "select territory_id from marts.account_alerts where month = ? order by 1",
            [july]).fetchall()]
        con.execute("update marts.account_alerts set territory_name = ?, detail_fr = ? "
                    "where territory_id = ?", ["@alerte", "=cmd|' /C calc'!A0", alert_ids[0]])
        con.execute("update marts.account_alerts set territory_name = ?, detail_fr = ? "
                    "where territory_id = ?", ["\t-tab", "+1-1", alert_ids[1]])
    finally:
        con.close()
    export_month(wh, july, tmp_path / "exports", dialect=dialect)
    folder = tmp_path / "exports" / "2021-07"
    delim = ";" if dialect == "excel-fr" else ","

    def rows(name):
        text = (folder / name).read_bytes().decode("utf-8-sig")   # keep CRs as written
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=delim))

    deps = {r[3]: r for r in rows("departement.csv")[1:]}
    names = {r[2] for r in deps.values()}
    assert {"'" + f for f in FORMULAS} <= names
    for row in rows("departement.csv")[1:]:
        for cell in row[1:5]:                      # text cells: évolution … compte
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
    alerts = rows("alertes.csv")[1:]
    assert ["'@alerte", "'=cmd|' /C calc'!A0"] in [[a[0], a[5]] for a in alerts]
    assert ["'\t-tab", "'+1-1"] in [[a[0], a[5]] for a in alerts]
    for row in alerts:
        assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in row), row
    # numbers stay numbers: a negative growth is not turned into text
    growth = [r[8] for r in rows("departement.csv")[1:]]
    assert "-12" in growth
    # the département / région files carry the same names, neutralised the same way
    area_names = set()
    for path in [*folder.glob("departements/*.csv"), *folder.glob("regions/*.csv")]:
        for row in rows(path.relative_to(folder))[1:]:
            area_names.add(row[5])
            for cell in (row[0], *row[4:9]):           # catégorie, évolution … compte
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (path.name, row)
    assert {"'" + f for f in FORMULAS} <= area_names


# --------------------------------------------------------------------------- (4) SQL injection

EVIL = "'; drop table raw.snapshots; --"


def test_sql_metacharacters_in_landing_values_are_data(landing):
    good = snapshot("gersledepartement", name=f"O'Brien \"{EVIL}", username=f"x{EVIL}",
                    items=[{"id": f"m'{EVIL}", "timestamp": "2021-07-30T09:12:00+0000",
                            "like_count": 1, "comments_count": 0,
                            "permalink": f"https://i/p/'{EVIL}"}])
    not_found = {"handle": "ghost", "fetched_at": "2021-07-02T00:00:00Z", "source": "graph_api",
                 "status": "not_found", "business_discovery": None,
                 "error": {"code": 110, "subcode": None, "message": f"user '{EVIL}' not found"}}
    lines = [dumps(snapshot(EVIL)),
             dumps(snapshot("paris_maville", f"2021-07-31{EVIL}")),
             dumps(good),
             dumps({**snapshot("ardeche"), "source": f"demo{EVIL}"}),
             dumps(not_found),
             f"{{\"handle\": \"x\"}}{EVIL}"]
    evil_file = f"o'brien{EVIL.replace('/', '_')}.ndjson"
    write(landing.root, "2021-07", evil_file, lines)
    # month folders that are not months are never read (nor the second file of July)
    write(landing.root, f"2021-07{EVIL}", "a.ndjson", [dumps(snapshot("intrus"))])
    write(landing.root, "2021-7", "a.ndjson", [dumps(snapshot("intrus"))])
    write(landing.root, "latest", "a.ndjson", [dumps(snapshot("intrus"))])
    result = landing.load()

    f = f"2021-07/{evil_file}"
    assert rejected(landing.db) == [
        (f, 1, f'invalid handle "{EVIL}"'),
        (f, 2, f'fetched_at "2021-07-31{EVIL}" has no time zone or is not an ISO time'),
        (f, 4, f'unknown source "demo{EVIL}"'),
        (f, 6, "invalid JSON (truncated line?)")]
    assert rejected_raw(landing.db) == {(f, n): lines[n - 1] for n in (1, 2, 4, 6)}
    assert query(landing.db, """select file, line, handle, account_name, username, error_message
                                from raw.snapshots order by line""") == [
        (f, 3, "gersledepartement", f"O'Brien \"{EVIL}", f"x{EVIL}", None),
        (f, 5, "ghost", None, None, f"user '{EVIL}' not found")]
    # the post is data; its permalink, not an Instagram post URL, is dropped (test_permalinks)
    assert query(landing.db, "select media_id, permalink from raw.media") == [
        (f"m'{EVIL}", None)]
    assert query(landing.db, """select table_name from information_schema.tables
                                where table_schema = 'raw' order by 1""") == [
        ("accounts",), ("load_files",), ("media",), ("rejected_accounts",), ("rejected_lines",),
        ("snapshots",)]
    assert query(landing.db, "select file from raw.load_files") == [(f,)]
    assert "intrus" not in str(query(landing.db, "select * from raw.snapshots"))
    assert (result.loaded, result.rejected) == (2, 4)


def test_sql_metacharacters_in_the_registry_are_data(tmp_path):
    path = tmp_path / "accounts.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["handle", "territory_id", "source_url", "checked_on"])
        w.writerow([EVIL, "departement:32", "", ""])
        w.writerow(["paris_maville", f"departement:75{EVIL}", "", ""])
        w.writerow(["gersledepartement", "departement:32", f"https://x/'{EVIL}", f"'{EVIL}"])
    db = tmp_path / "warehouse.duckdb"
    n, _ = load_registry(db, path, territory_ids())
    assert n == 1
    assert query(db, "select handle, source_url, checked_on from raw.accounts") == [
        ("gersledepartement", f"https://x/'{EVIL}", f"'{EVIL}")]
    assert query(db, "select registry_line, raw_row from raw.rejected_accounts order by 1") == [
        (2, f"{EVIL},departement:32,,"), (3, f"paris_maville,departement:75{EVIL},,")]
    assert query(db, "select count(*) from information_schema.tables where table_schema = 'raw'"
                 ) == [(6,)]


SQL_CALLS = {"execute", "executemany", "sql", "query", "from_query"}
DATA_NAME = re.compile(r"handle|territor|month", re.IGNORECASE)
# Names spliced into SQL text on purpose: module constants and SQL fragments built only
# from constants (checked by reading the code), as "path:name".
ALLOWED: set[str] = {
    # `<expr> between $first and $last and list_contains($months, <expr>)`: parameters
    "dagster_project/publish/exports/csv_export.py:months_in",
}


def _idents(node: ast.AST) -> set[str]:
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.Attribute):
            out.add(n.attr)
    return out


def _spliced(expr: ast.AST) -> list[ast.AST]:
    """Expressions pasted into a string by an f-string, str.format, % or +."""
    out: list[ast.AST] = []
    for n in ast.walk(expr):
        if isinstance(n, ast.JoinedStr):
            out += [v.value for v in n.values if isinstance(v, ast.FormattedValue)]
        elif (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
              and n.func.attr == "format"):
            out += [*n.args, *(k.value for k in n.keywords)]
        elif isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mod) and (
                isinstance(n.left, ast.Constant) and isinstance(n.left.value, str)):
            out.append(n.right)
        elif isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add):
            out += [s for s in (n.left, n.right)
                    if not isinstance(s, (ast.Constant, ast.JoinedStr, ast.BinOp))]
    return out


def _walk_scope(scope: ast.AST):
    """ast.walk without entering nested functions (each is its own scope)."""
    todo = list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            todo += ast.iter_child_nodes(node)


def sql_splices(source: str, filename: str) -> list[str]:
    """`file:line: name` for every handle/territory/month-like name pasted into the SQL text
    of an execute()/sql() call, directly or through local variables of the same scope
    (assigned, `+=`, or filled with .append/.extend/.insert)."""
    tree = ast.parse(source, filename)
    found = []
    scopes = [tree] + [n for n in ast.walk(tree)
                       if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for scope in scopes:
        assigns: dict[str, list[ast.AST]] = {}
        for n in _walk_scope(scope):
            if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and n.value is not None:
                targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                for t in targets:
                    if isinstance(t, ast.Name):
                        assigns.setdefault(t.id, []).append(n.value)
            elif (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                  and n.func.attr in ("append", "extend", "insert")
                  and isinstance(n.func.value, ast.Name)):
                assigns.setdefault(n.func.value.id, []).extend(n.args)
        for call in _walk_scope(scope):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and call.func.attr in SQL_CALLS and call.args):
                continue
            todo, seen = [call.args[0]], set()
            while todo:
                expr = todo.pop()
                if isinstance(expr, ast.Name):
                    if expr.id in seen:
                        continue
                    seen.add(expr.id)
                    todo += assigns.get(expr.id, [])
                    continue
                for piece in _spliced(expr):
                    for name in _idents(piece):
                        if name.isupper() or f"{filename}:{name}" in ALLOWED:
                            continue
                        if DATA_NAME.search(name):
                            found.append(f"{filename}:{call.lineno}: {name}")
                    todo += [n for n in ast.walk(piece) if isinstance(n, ast.Name)]
                # SQL text assembled from pieces: follow the names it is built from
                if not isinstance(expr, ast.Constant):
                    todo += [n for n in ast.walk(expr) if isinstance(n, ast.Name)]
    return sorted(set(found))


def test_scanner_catches_spliced_user_strings():
    bad = '''
def f(con, handle, month, territory_id, rows):
    con.execute(f"delete from raw.accounts where handle = '{handle}'")
    sql = "select * from t where month = '{}'".format(month)
    con.execute(sql)
    where = "territory_id = '%s'" % territory_id
    q = f"select 1 from t where {where}"
    con.sql(q)
    con.execute("select * from t where m = '" + month.isoformat() + "'")
    con.execute("select * from t where handle = ?", [handle])          # fine
    con.execute(f"select {MAX_COUNT} from t where handle = $h", {"h": handle})  # fine
    checks = []
    for col in ("a", "b"):
        checks.append(f"when {col} = '{rows[0].handle}' then 1")
    con.execute(f"select case {' '.join(checks)} end from t")


def g(con, month):
    con.execute("select * from t where month = ?", [month])             # fine
'''
    assert sql_splices(bad, "x.py") == ["x.py:15: handle", "x.py:3: handle", "x.py:5: month",
                                       "x.py:8: territory_id", "x.py:9: month"]


def test_no_user_string_is_spliced_into_sql():
    hits = []
    for path in sorted((ROOT / "dagster_project").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        hits += sql_splices(path.read_text(encoding="utf-8"), rel)
    assert hits == [], "SQL built by pasting values (use parameters):\n" + "\n".join(hits)
