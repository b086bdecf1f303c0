"""The accounts registry: which Instagram handle speaks for which territory.

CSV columns `handle,territory_id,source_url,checked_on` (extra columns kept, optional
`ig_user_id`: the Instagram account id the handle is known to belong to).
Pure functions: parsing never raises on a bad row; each bad row is returned with its line
number and the reason, the good rows go on. `write_registry` rewrites a registry file
atomically, keeping its columns.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from dagster_project.files import atomic_file

HANDLE_RE = re.compile(r"^[a-z0-9._]{1,30}$")
REQUIRED_COLUMNS = ("handle", "territory_id")
COLUMNS = ("handle", "territory_id", "source_url", "checked_on", "ig_user_id")
IG_USER_ID_RE = re.compile(r"^[0-9]{1,32}$")
# https://www.instagram.com/name/, instagram.com/name, http://instagram.com/name?hl=fr …
_INSTAGRAM_URL_RE = re.compile(
    r"^(?:https?://)?(?:www\.|m\.)?instagram\.com/+([^/?#]*)/*(?:[?#].*)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Account:
    handle: str
    territory_id: str
    source_url: str = ""
    checked_on: str = ""
    line: int = 0
    ig_user_id: str = ""


@dataclass(frozen=True)
class RejectedRow:
    line: int
    raw: str
    reason: str


def normalize_handle(text: str) -> str:
    """The handle in every form people type, normalised: surrounding spaces, a leading '@'
    and any instagram.com URL form (with or without scheme, `www.`, trailing `/`) removed,
    lower-cased. No other repair: a bad handle stays bad (and fails `is_valid_handle`)."""
    text = (text or "").strip()
    url = _INSTAGRAM_URL_RE.match(text)
    if url:
        text = url.group(1).strip()
    return text.removeprefix("@").lower()


# The same rule in DuckDB SQL, for the loader (landing lines are normalised in bulk):
# Python's str.strip() whitespace, the same URL pattern (RE2 accepts this syntax), one
# leading '@', lower() (DuckDB lowers U+0130 'İ' to 'i', Python to 'i' + U+0307: replaced
# first). tests/registry/test_accounts.py proves both agree on thousands of inputs.
_PY_WHITESPACE_RE2 = (r"\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}"
                      r"\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}")
_SQL_STRIP = f"'^[{_PY_WHITESPACE_RE2}]+|[{_PY_WHITESPACE_RE2}]+$', '', 'g'"
NORMALIZE_HANDLE_SQL = f"""
create or replace temp macro normalize_handle(h) as lower(replace(regexp_replace(
    regexp_replace(
        regexp_replace(regexp_replace(h, {_SQL_STRIP}), '{_INSTAGRAM_URL_RE.pattern}', '\\1', 'i'),
        {_SQL_STRIP}),
    '^@', ''), chr(304), 'i' || chr(775)));
"""


def is_valid_handle(handle: str) -> bool:
    return bool(HANDLE_RE.match(handle or ""))


def _sniff_delimiter(header: str) -> str:
    return ";" if header.count(";") > header.count(",") else ","


def parse_registry(text: str, known_territories: set[str] | frozenset[str],
                   name: str = "registry") -> tuple[list[Account], list[RejectedRow]]:
    """Parse registry CSV text (BOM, CRLF and ';' tolerated).

    Returns the valid accounts and the rejected rows, each with its 1-based file line.
    """
    text = text.lstrip("\ufeff")
    # Only CR, LF and CRLF end a line: str.splitlines() also splits on U+2028, \x0c, \x85…
    # (a name pasted from a web page), which split the row and shifted every line number.
    lines = io.StringIO(text, newline="").readlines()
    if not lines or not lines[0].strip():
        raise ValueError(f"{name}: empty registry (expected a header handle,territory_id,…)")
    delimiter = _sniff_delimiter(lines[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader)]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{name}: missing column(s) {', '.join(missing)} in header {header}")
    idx = {c: header.index(c) for c in header}
    accounts: list[Account] = []
    rejected: list[RejectedRow] = []
    seen_territory: dict[str, int] = {}
    seen_handle: dict[str, int] = {}
    end = reader.line_num
    for row in reader:
        line, end = end + 1, reader.line_num  # first line of the row (quoted cells may span lines)
        raw = delimiter.join(row)
        if not any(cell.strip() for cell in row):
            continue

        def cell(col: str, row: list[str] = row) -> str:
            i = idx.get(col)
            return row[i].strip() if i is not None and i < len(row) else ""

        original = cell("handle")
        handle = normalize_handle(original)
        territory = cell("territory_id")
        ig_user_id = cell("ig_user_id")
        if not is_valid_handle(handle):
            reason = (f"{name} line {line}: invalid handle {original!r} "
                      "(expected 1-30 characters among a-z 0-9 . _)")
        elif ig_user_id and not IG_USER_ID_RE.match(ig_user_id):
            reason = (f"{name} line {line}: invalid ig_user_id {ig_user_id!r} for handle "
                      f"{handle!r} (expected the numeric Instagram account id)")
        elif territory not in known_territories:
            reason = f"{name} line {line}: unknown territory_id {territory!r} for handle {handle!r}"
        elif territory in seen_territory:
            reason = (f"{name} line {line}: territory {territory} already has an account "
                      f"(line {seen_territory[territory]}); {handle!r} ignored")
        elif handle in seen_handle:
            reason = (f"{name} line {line}: handle {handle!r} already registered "
                      f"(line {seen_handle[handle]})")
        else:
            seen_territory[territory] = line
            seen_handle[handle] = line
            accounts.append(Account(handle, territory, cell("source_url"), cell("checked_on"),
                                    line, ig_user_id))
            continue
        rejected.append(RejectedRow(line, raw, reason))
    return accounts, rejected


def read_registry(path: Path, known_territories: set[str] | frozenset[str]
                  ) -> tuple[list[Account], list[RejectedRow]]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"accounts registry not found: {path}")
    return parse_registry(path.read_text(encoding="utf-8-sig"), known_territories, name=path.name)


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """A registry file as (header, rows): every column kept, cells as written (for rewrites)."""
    text = Path(path).read_text(encoding="utf-8-sig")
    first = io.StringIO(text, newline="").readline()
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(first))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    rows = [{k: (v or "") for k, v in row.items() if k is not None} for row in reader
            if any((v or "").strip() for k, v in row.items() if k is not None)]
    return header, rows


def write_registry(path: Path, header: list[str], rows: list[dict[str, str]]) -> Path:
    """Rewrite a registry file atomically (temp file in the same folder, fsync, rename):
    a reader sees the old file or the new one, never half of one. UTF-8, `,`, `\\n`."""
    with atomic_file(path, "w", encoding="utf-8", newline="", durable=True) as fh:
        writer = csv.DictWriter(fh, fieldnames=header, lineterminator="\n",
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)
