"""`observatoire sql`: a query on the analysts' read-only copy of the warehouse, with the
DuckDB that wrote it (the DuckDB CLI on PyPI lags behind and cannot open newer files).
A table on a terminal; CSV or JSON for pipes."""
from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import duckdb
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dagster_project.cli.common import fail, readable_warehouse, settings_for

TABLE_ROWS = 100     # rows drawn on a terminal (--csv / --json write them all)


def sql(
    query: Annotated[str | None, typer.Argument(
        help="SQL to run; '-' or nothing reads it from standard input.")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Write CSV (comma, header).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Write a JSON array of rows.")] = False,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder.")] = None,
) -> None:
    """Query the warehouse (the read-only published copy), e.g.
    observatoire sql "select * from marts.fct_monthly_rankings limit 5"."""
    if as_csv and as_json:
        fail("give --csv or --json, not both")
    if query is None or query == "-":
        if sys.stdin.isatty():
            fail('give a query: observatoire sql "select …" (or pipe one into it)')
        query = sys.stdin.read()
    if not query.strip():
        fail("the query is empty")
    path = readable_warehouse(settings_for(data_dir))
    # a terminal shows the first rows only: fetching millions to draw a hundred is waste
    columns, rows = run_query(path, query, None if as_csv or as_json else TABLE_ROWS + 1)
    if as_csv:
        write_csv(columns, rows)
    elif as_json:
        json.dump([dict(zip(columns, r)) for r in rows], sys.stdout, ensure_ascii=False,
                  default=_json_value, indent=1)
        sys.stdout.write("\n")
    else:
        print_table(columns, rows)


def run_query(path: Path, query: str, limit: int | None = None) -> tuple[list[str], list[tuple]]:
    """Columns and rows (all, or the first `limit`) of the last statement, on a read-only
    connection; DuckDB's own words (which name the missing table or column, and suggest
    one) as the error."""
    from dagster_project import warehouse

    with warehouse.connect(path, read_only=True) as con:
        try:
            cur = con.execute(query)
            if cur.description is None:
                return [], []
            rows = cur.fetchall() if limit is None else cur.fetchmany(limit)
            return [d[0] for d in cur.description], rows
        except duckdb.Error as exc:
            fail(f"{_first_lines(str(exc))}\n(warehouse: {path}, read-only)")


def _first_lines(message: str) -> str:
    """DuckDB's message without the query echo that follows it (LINE 1: …)."""
    return message.split("\n\nLINE ")[0].strip()


def _json_value(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    return str(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    return str(value)


def write_csv(columns: list[str], rows: list[tuple]) -> None:
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(columns)
    out.writerows([_text(v) for v in r] for r in rows)


def print_table(columns: list[str], rows: list[tuple]) -> None:
    console = Console()
    if not columns:
        console.print("ok (no result set)")
        return
    table = Table(show_lines=False, header_style="bold")
    numeric = [bool(rows) and all(isinstance(r[i], (int, float, decimal.Decimal))
                                  for r in rows if r[i] is not None)
               for i in range(len(columns))]
    for name, right in zip(columns, numeric):
        table.add_column(name, justify="right" if right else "left", overflow="fold")
    for r in rows[:TABLE_ROWS]:
        table.add_row(*("[dim]NULL[/]" if v is None else escape(_text(v)) for v in r))
    console.print(table)
    if len(rows) > TABLE_ROWS:
        console.print(f"the first {TABLE_ROWS} rows (more: --csv or --json write them all)")
    else:
        console.print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}")
