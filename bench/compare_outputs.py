"""Fingerprint what a run publishes, and compare two fingerprints (refactoring guard).

    python -m bench.compare_outputs snapshot DATA_DIR OUT.json
    python -m bench.compare_outputs compare BEFORE.json AFTER.json

A fingerprint holds, for every table of the marts (the warehouse's `marts` schema), its
column names and types, row count and a hash of its rows in a stable order; and the
SHA-256 of every file under `exports/` and `site/`, with the time of the build blanked out
("généré le …", "réalisé le : …": two runs a minute apart differ by nothing else), and a
Parquet file's rows (its key/value metadata records when the warehouse last changed).
`compare` prints every difference and exits 1 if there is one: a move of code that changes
no behaviour leaves the marts row-identical and the CSVs and the site byte-identical.
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

import duckdb


def _marts(warehouse: Path) -> dict:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = [r[0] for r in con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'marts' order by table_name").fetchall()]
        out = {}
        for table in tables:
            cols = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'marts' and table_name = ? order by ordinal_position",
                [table]).fetchall()
            digest = hashlib.sha256()
            rows = con.execute(f"select * from marts.{table} order by all").fetchall()
            for row in rows:
                digest.update(repr(row).encode())
            out[table] = {"columns": [list(c) for c in cols], "rows": len(rows),
                          "sha256": digest.hexdigest()}
        return out
    finally:
        con.close()


BUILD_TIME = re.compile(rb"((?:g\xc3\xa9n\xc3\xa9r\xc3\xa9 le|r\xc3\xa9alis\xc3\xa9 le :) )"
                        rb"\d{2}/\d{2}/\d{4}(?: \xc3\xa0)? \d{2}:\d{2} UTC")


def _digest(path: Path) -> str:
    if path.suffix == ".parquet":
        con = duckdb.connect()
        rows = con.execute("select * from read_parquet(?, hive_partitioning = false) order by all",
                           [str(path)]).fetchall()
        con.close()
        return "rows:" + hashlib.sha256(repr(rows).encode()).hexdigest()
    return hashlib.sha256(BUILD_TIME.sub(rb"\1<time>", path.read_bytes())).hexdigest()


def _files(root: Path) -> dict:
    return {str(p.relative_to(root)): _digest(p) for p in sorted(root.rglob("*")) if p.is_file()}


def snapshot(data_dir: Path) -> dict:
    return {"marts": _marts(data_dir / "warehouse.duckdb"),
            "exports": _files(data_dir / "exports"),
            "site": _files(data_dir / "site")}


def compare(before: dict, after: dict) -> list[str]:
    diffs = []
    for part in ("marts", "exports", "site"):
        a, b = before[part], after[part]
        for key in sorted(set(a) | set(b)):
            if key not in b:
                diffs.append(f"{part}: {key} missing after")
            elif key not in a:
                diffs.append(f"{part}: {key} new after")
            elif a[key] != b[key]:
                diffs.append(f"{part}: {key} differs")
    return diffs


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "snapshot":
        fp = snapshot(Path(argv[1]))
        Path(argv[2]).write_text(json.dumps(fp, indent=1, sort_keys=True))
        print(f"{len(fp['marts'])} mart tables "
              f"({sum(t['rows'] for t in fp['marts'].values())} rows), "
              f"{len(fp['exports'])} export files, {len(fp['site'])} site files")
        return 0
    if len(argv) == 3 and argv[0] == "compare":
        before, after = (json.loads(Path(p).read_text()) for p in argv[1:])
        diffs = compare(before, after)
        for line in diffs:
            print(line)
        print(f"{len(diffs)} difference(s); compared {len(before['marts'])} mart tables, "
              f"{len(before['exports'])} export files, {len(before['site'])} site files")
        return 1 if diffs else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
