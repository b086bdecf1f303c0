from dagster_project.registry.accounts import normalize_handle, parse_registry
from dagster_project.registry.territories import territory_ids

KNOWN = territory_ids()


def test_valid_rows_load_and_bad_rows_are_named():
    text = ("handle,territory_id,source_url,checked_on\n"
            "@GersLeDepartement,departement:32,,\n"
            "haut Savoie le Departement,departement:74,,\n"
            "ghost,departement:999,,\n"
            "isere.le.departement,departement:38,,\n"
            "copy,departement:38,,\n"
            "gersledepartement,departement:75,,\n")
    accounts, rejected = parse_registry(text, KNOWN, name="accounts.csv")
    assert [(a.handle, a.territory_id, a.line) for a in accounts] == [
        ("gersledepartement", "departement:32", 2), ("isere.le.departement", "departement:38", 5)]
    assert [(r.line, r.reason) for r in rejected] == [
        (3, ("accounts.csv line 3: invalid handle 'haut Savoie le Departement' "
             "(expected 1-30 characters among a-z 0-9 . _)")),
        (4, "accounts.csv line 4: unknown territory_id 'departement:999' for handle 'ghost'"),
        (6, ("accounts.csv line 6: territory departement:38 already has an account (line 5); "
             "'copy' ignored")),
        (7, "accounts.csv line 7: handle 'gersledepartement' already registered (line 2)"),
    ]


def test_bom_crlf_and_semicolon():
    text = "\ufeffhandle;territory_id;source_url;checked_on\r\nlatenareze;epci:243200417;;\r\n"
    accounts, rejected = parse_registry(text, KNOWN)
    assert [(a.handle, a.territory_id) for a in accounts] == [("latenareze", "epci:243200417")]
    assert rejected == []


def test_normalize_handle():
    assert normalize_handle("  @Paris_MaVille ") == "paris_maville"


def test_sql_normalize_handle_agrees_with_python():
    """The loader's SQL normaliser (registry.NORMALIZE_HANDLE_SQL) is the Python rule:
    same output on hand-picked forms and on thousands of random strings built from the
    pieces that matter (spaces of every kind, '@', URL parts, case, non-ASCII letters)."""
    import random
    import sys

    import duckdb

    from dagster_project.registry.accounts import _PY_WHITESPACE_RE2, NORMALIZE_HANDLE_SQL

    spaces = "".join(chr(i) for i in range(sys.maxunicode + 1) if chr(i).isspace())
    con = duckdb.connect()
    listed = con.execute(f"select regexp_replace(?, '[{_PY_WHITESPACE_RE2}]', '', 'g')",
                         [spaces]).fetchone()[0]
    assert listed == "", "the SQL whitespace class is Python's str.isspace()"
    pieces = ["@", "@@", " ", "\t", "\u00a0", "\u3000", "\n", "https://", "http://", "HTTPS://",
              "www.", "m.", "instagram.com/", "Instagram.COM//", "/", "?hl=fr", "#x", "Paris",
              "ma_ville", "gers.32", "é", "İ", "\u212a", "ß", "x" * 31, "a", "Z", "0", "-", "."]
    rng = random.Random(16)
    cases = ["  @Paris_MaVille ", "https://www.instagram.com/Toulouse/", "instagram.com/gers?hl=fr",
             "@ gers", "@@gers", "", "   ", "m.instagram.com/x/#top", "\u00a0@Nice\u3000"]
    cases += ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 6))) for _ in range(5000)]
    con.execute(NORMALIZE_HANDLE_SQL)
    con.execute("create table t (i integer, h varchar)")
    con.executemany("insert into t values (?, ?)", list(enumerate(cases)))
    got = dict(con.execute("select i, normalize_handle(h) from t").fetchall())
    wrong = [(h, got[i], normalize_handle(h)) for i, h in enumerate(cases)
             if got[i] != normalize_handle(h)]
    assert wrong == []
    assert con.execute("select normalize_handle(null)").fetchone()[0] is None
