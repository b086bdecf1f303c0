"""Bad accounts registries, loaded with `load_registry` into raw.accounts /
raw.rejected_accounts: each bad row is rejected with a message naming file and line, the
other rows load."""
from __future__ import annotations

import datetime as dt

import pytest
from rel_helpers import query

from dagster_project.load.registry import load_registry
from dagster_project.registry.accounts import is_valid_handle
from dagster_project.registry.territories import territory_ids

KNOWN = territory_ids()
NOW = dt.datetime(2021, 8, 15, tzinfo=dt.UTC)
HEADER = "handle,territory_id,source_url,checked_on\n"


def _load(tmp_path, content: str | bytes, name: str = "accounts.csv"):
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    db = tmp_path / "warehouse.duckdb"
    n, rejected = load_registry(db, path, KNOWN, now=NOW)
    accounts = query(db, """select handle, territory_id, source_url, checked_on, registry_file,
                                   registry_line from raw.accounts order by registry_line""")
    stored = query(db, """select registry_file, registry_line, raw_row, reason
                          from raw.rejected_accounts order by registry_line""")
    assert n == len(accounts)
    assert [(r.line, r.raw, r.reason) for r in rejected] == [s[1:] for s in stored]
    return accounts, stored


def test_invalid_handle_names_the_line(tmp_path):
    accounts, rejected = _load(tmp_path, HEADER
                               + "gersledepartement,departement:32,https://x/gers,2021-07-31\n"
                               + "haut Savoie le Departement,departement:74,,\n"
                               + "paris_maville,departement:75,,\n")
    assert accounts == [
        ("gersledepartement", "departement:32", "https://x/gers", "2021-07-31", "accounts.csv", 2),
        ("paris_maville", "departement:75", "", "", "accounts.csv", 4)]
    assert rejected == [("accounts.csv", 3, "haut Savoie le Departement,departement:74,,",
                         ("accounts.csv line 3: invalid handle 'haut Savoie le Departement' "
                         "(expected 1-30 characters among a-z 0-9 . _)"))]


def test_unknown_territory(tmp_path):
    accounts, rejected = _load(tmp_path, HEADER + "gersledepartement,departement:32,,\n"
                               + "ghost,departement:999,,\n" + "nowhere,commune:00000,,\n")
    assert [a[0] for a in accounts] == ["gersledepartement"]
    assert [r[1:] for r in rejected] == [
        (3, "ghost,departement:999,,",
         "accounts.csv line 3: unknown territory_id 'departement:999' for handle 'ghost'"),
        (4, "nowhere,commune:00000,,",
         "accounts.csv line 4: unknown territory_id 'commune:00000' for handle 'nowhere'")]


def test_duplicate_territory_keeps_the_first(tmp_path):
    accounts, rejected = _load(tmp_path, HEADER + "isere.le.departement,departement:38,,\n"
                               + "gersledepartement,departement:32,,\n"
                               + "isere_bis,departement:38,,\n")
    assert [(a[0], a[1], a[5]) for a in accounts] == [
        ("isere.le.departement", "departement:38", 2), ("gersledepartement", "departement:32", 3)]
    assert [r[1:] for r in rejected] == [
        (4, "isere_bis,departement:38,,",
         ("accounts.csv line 4: territory departement:38 already has an account (line 2); "
         "'isere_bis' ignored"))]


def test_bom_and_crlf(tmp_path):
    content = ("\ufeff" + HEADER + "@GersLeDepartement,departement:32,,2021-07-31\n"
               + "bad handle!,departement:75,,\n" + "isere.le.departement,departement:38,,\n"
               ).replace("\n", "\r\n").encode("utf-8")
    accounts, rejected = _load(tmp_path, content)
    assert [(a[0], a[1], a[3], a[5]) for a in accounts] == [
        ("gersledepartement", "departement:32", "2021-07-31", 2),
        ("isere.le.departement", "departement:38", "", 4)]
    assert [(r[1], r[3]) for r in rejected] == [
        (3, ("accounts.csv line 3: invalid handle 'bad handle!' "
            "(expected 1-30 characters among a-z 0-9 . _)"))]
    assert not any("\r" in str(c) or "\ufeff" in str(c) for a in accounts for c in a)


def test_semicolon_separator(tmp_path):
    content = ("handle;territory_id;source_url;checked_on;name\n"
               "gersledepartement;departement:32;https://www.instagram.com/gers/;2021-07-31;Gers, le\n"
               "latenareze;epci:243200417;;;\n"
               "paris maville;departement:75;;;\n")
    accounts, rejected = _load(tmp_path, content, name="comptes;excel.csv")
    assert accounts == [
        ("gersledepartement", "departement:32", "https://www.instagram.com/gers/", "2021-07-31",
         "comptes;excel.csv", 2),
        ("latenareze", "epci:243200417", "", "", "comptes;excel.csv", 3)]
    assert [(r[1], r[3]) for r in rejected] == [
        (4, ("comptes;excel.csv line 4: invalid handle 'paris maville' "
            "(expected 1-30 characters among a-z 0-9 . _)"))]


def test_unicode_line_separator_in_a_name_does_not_shift_line_numbers(tmp_path):
    # U+2028 (pasted from a web page) is not a CSV line break: one row, numbering unchanged
    accounts, rejected = _load(tmp_path, HEADER.replace("\n", ",name\n")
                               + "gersledepartement,departement:32,,,Le\u2028Gers\n"
                               + "bad handle,departement:75,,,Paris\n"
                               + "isere.le.departement,departement:38,,,Isère\n")
    assert [(a[0], a[5]) for a in accounts] == [("gersledepartement", 2),
                                                ("isere.le.departement", 4)]
    assert [r[1] for r in rejected] == [3]


def test_reload_replaces_the_registry(tmp_path):
    _load(tmp_path, HEADER + "gersledepartement,departement:32,,\nbad handle,departement:75,,\n")
    accounts, rejected = _load(tmp_path, HEADER + "paris_maville,departement:75,,\n")
    assert [a[0] for a in accounts] == ["paris_maville"]
    assert rejected == []


@pytest.mark.parametrize("handle", [
    "gers)", "gers{", "gers,x", "gers&x", "gers x", "gers}", "gers(", "gers/x", "gers?x",
    "gers#x", "gers%2C", "gers\nx", "g" * 31, "", "gers'x", 'gers"x'])
def test_handles_that_could_change_a_url_are_invalid(tmp_path, handle):
    assert not is_valid_handle(handle)
    quoted = '"' + handle.replace('"', '""') + '"'
    accounts, rejected = _load(tmp_path, HEADER + quoted + ",departement:32,,\n"
                               + "paris_maville,departement:75,,\n")
    assert [a[0] for a in accounts] == ["paris_maville"]
    [(file, line, _raw, reason)] = rejected
    assert (file, line) == ("accounts.csv", 2)
    assert reason.startswith(f"accounts.csv line 2: invalid handle {handle.strip()!r}")
