"""`observatoire accounts discover|check|add`: grow the registry, never silently."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dagster_project.cli.common import console, fail

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Grow the accounts registry: discover → check → add.")


def _registry(accounts: Path | None) -> Path:
    from dagster_project.settings import load_settings

    return Path(accounts) if accounts else load_settings().accounts_file


@app.command()
def discover(
    out: Annotated[Path, typer.Option(help="Candidates CSV to write.")],
    accounts: Annotated[Path | None, typer.Option(help="Registry to compare with (env OBSERVATOIRE_ACCOUNTS).")] = None,
    endpoint: Annotated[str | None, typer.Option(help="SPARQL endpoint (env WIKIDATA_SPARQL_URL).")] = None,
) -> None:
    """Ask Wikidata for the Instagram usernames of territories; write candidates with status
    new | known | conflict | invalid. The registry is not changed."""
    from dagster_project.registry.accounts import read_registry
    from dagster_project.registry.discover import classify, write_candidates
    from dagster_project.registry.territories import territory_ids, territory_names
    from dagster_project.registry.wikidata import DEFAULT_SPARQL_URL, fetch_all

    url = endpoint or os.environ.get("WIKIDATA_SPARQL_URL") or DEFAULT_SPARQL_URL
    registry = _registry(accounts)
    known = territory_ids()
    try:
        reg_accounts, _rejected = read_registry(registry, known)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    console.print(f"querying {url} (one query per territory kind)…")
    try:
        bindings = fetch_all(url)
    except RuntimeError as exc:
        fail(str(exc))
    candidates = classify(bindings, reg_accounts, known, territory_names())
    write_candidates(out, candidates)
    counts: dict[str, int] = {}
    for c in candidates:
        counts[c.status] = counts.get(c.status, 0) + 1
    console.print(f"{len(bindings)} bindings → {len(candidates)} candidates: " + ", ".join(
        f"{s} {counts.get(s, 0)}" for s in ("new", "known", "conflict", "invalid")))
    console.print(f"  {out}\n  next: review it, then `observatoire accounts check "
                  f"--accounts {out} --out checked.csv`")


@app.command()
def check(
    accounts: Annotated[Path, typer.Option(help="CSV with handle,territory_id (a registry or discover's output).")],
    out: Annotated[Path, typer.Option(help="Check report CSV (re-run to resume).")],
    workers: Annotated[int, typer.Option(help="Requests in flight.")] = 4,
) -> None:
    """Verify each handle with the Graph API (business_discovery): ok | not_found |
    not_business | error | invalid. Needs INSTAGRAM_ACCESS_TOKEN and INSTAGRAM_USER_ID."""
    from dagster_project.collect.graph_api import TokenError
    from dagster_project.registry.check import check_accounts, read_done, read_input
    from dagster_project.settings import load_settings

    if not accounts.exists():
        fail(f"accounts file not found: {accounts}")
    try:
        items = read_input(accounts)
    except ValueError as exc:
        fail(str(exc))
    already = read_done(out)
    console.print(f"{len(items)} handles in {accounts}; {len(already)} already in {out}")
    with Progress(TextColumn("checking"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[last]}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("check", total=len(items), completed=len(already), last="")

        def progress(row: dict) -> None:
            bar.update(task, advance=1, last=f"@{row['handle']} {row['status']}")

        try:
            counts = check_accounts(items, out, load_settings(), max_in_flight=workers,
                                    progress=progress)
        except (TokenError, ValueError) as exc:
            fail(f"{exc}\n  results so far are kept in {out}; re-run to resume")
    console.print("checked: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    console.print(f"  {out}\n  next: `observatoire accounts add --from {out}`")


@app.command()
def add(
    from_: Annotated[Path, typer.Option("--from", help="Check report CSV (output of `check`).")],
    accounts: Annotated[Path | None, typer.Option(help="Registry to update (env OBSERVATOIRE_ACCOUNTS, default seeds/instagram_accounts.csv).")] = None,
) -> None:
    """Merge the report's `ok` rows into the registry (atomic rewrite); conflicts are refused
    row by row. Exits 1 when a row was refused (the others are merged)."""
    from dagster_project.registry.add import add_from_report
    from dagster_project.registry.territories import territory_ids, territory_names

    registry = _registry(accounts)
    if not registry.exists():
        fail(f"accounts registry not found: {registry}")
    if not from_.exists():
        fail(f"check report not found: {from_}")
    result = add_from_report(registry, from_, territory_ids(), territory_names())
    for message in result.refused:
        console.print(f"[yellow]refused:[/] {message}")
    console.print(f"{registry}: {len(result.added)} added, {len(result.updated)} updated "
                  f"(checked_on, ig_user_id), {len(result.refused)} refused, "
                  f"{result.skipped} rows not ok skipped")
    if result.refused:
        raise typer.Exit(code=1)
