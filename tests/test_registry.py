from dagster_project.reference import territory_ids
from dagster_project.registry import normalize_handle, parse_registry

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
