"""`observatoire verify` and `observatoire backup --to DIR`: the archive's commands."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from dagster_project.cli.common import console, settings_for


def verify(
    month: Annotated[list[str] | None, typer.Option(
        "--month", help="YYYY-MM (repeatable); default: every month folder and month loaded.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder (env OBSERVATOIRE_DATA_DIR).")] = None,
) -> None:
    """Check the landing archive against its manifests, and the warehouse against it.

    Every landing file listed in its month's MANIFEST.tsv is checked (SHA-256, size), and
    the warehouse's raw tables against the files (lines loaded + rejected per file). Exits
    0 when all holds; otherwise names every missing or altered file and every drift, with
    what to do. Files not loaded yet are listed, not errors."""
    from dagster_project import months as m
    from dagster_project.archive import verify as archive

    settings = settings_for(data_dir)
    try:
        months = sorted({m.month_key(m.parse_month(x)) for x in month}) if month else None
        started = time.monotonic()
        report = archive.verify(settings.landing_dir, settings.warehouse, months,
                                data_dir=settings.data_dir)
    except (ValueError, RuntimeError) as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(code=2) from None
    for line in archive.summary_lines(report):
        console.print(escape(line), soft_wrap=True)
    took = time.monotonic() - started
    status = "[green]OK[/]" if report.ok else f"[bold red]{len(report.errors)} problem(s)[/]"
    console.print(f"{status}: {len(report.months)} month(s), {report.files} file(s) listed, "
                  f"{report.loaded} checked against the warehouse, "
                  f"{len(report.notices)} not loaded yet ({took:.1f} s)")
    if not report.ok:
        raise typer.Exit(code=1)


def backup(
    to: Annotated[Path, typer.Option("--to", help="Backup folder (created; same layout as the data folder).")],
    accounts: Annotated[list[Path] | None, typer.Option(
        help="Registry file(s) to include besides the default one (env OBSERVATOIRE_ACCOUNTS) "
        "and the demo's.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder (env OBSERVATOIRE_DATA_DIR).")] = None,
) -> None:
    """Copy the landing archive, its manifests and the registries to DIR, then verify it.

    Incremental (only what DIR lacks), each file through a temp name, fsync and rename.
    Re-run it after an interruption: it completes what is missing. DIR has the data
    folder's layout: `observatoire run --source landing --data-dir DIR` rebuilds from it."""
    from dagster_project.archive import backup as archive_backup
    from dagster_project.archive import verify as archive

    settings = settings_for(data_dir)
    to = Path(to).resolve()
    if to == settings.data_dir or settings.data_dir in to.parents:
        console.print("[bold red]error:[/] the backup folder must be outside the data folder")
        raise typer.Exit(code=2)
    started = time.monotonic()
    registries = archive_backup.registry_files(settings.data_dir,
                                        [settings.accounts_file, *(accounts or [])])
    result = archive_backup.backup(settings.landing_dir, to, registries)
    took = time.monotonic() - started
    for finding in result.findings:
        console.print(escape(str(finding)), soft_wrap=True)
    for line in archive.summary_lines(result.verify):
        console.print(escape("backup: " + line), soft_wrap=True)
    console.print(f"{'[green]OK[/]' if result.ok else '[bold red]INCOMPLETE[/]'}: "
                  f"{len(result.copied)} file(s) copied, {result.skipped} already there, "
                  f"{len(result.registries)} registry file(s), copy verified: "
                  f"{result.verify.files} file(s) ({took:.1f} s) → {to}")
    if not result.ok:
        raise typer.Exit(code=1)
