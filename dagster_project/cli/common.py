"""What every command shares: the console, the error exit, the environment set-up."""
from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)


def fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=1)


def configure(data_dir: Path | None) -> Path:
    """Set the environment every later import reads; returns the data dir."""
    if data_dir is not None:
        os.environ["OBSERVATOIRE_DATA_DIR"] = str(Path(data_dir).resolve())
    from dagster_project.defs.instance import ensure_instance
    from dagster_project.settings import load_settings

    settings = load_settings()
    os.environ["OBSERVATOIRE_DATA_DIR"] = str(settings.data_dir)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    # A range run plans one event per asset instead of one per asset and month (SQLite
    # storage writes ~50 events/s: 109 months x 9 assets would cost ~20 s before starting).
    os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_instance(settings.dagster_home)
    return settings.data_dir


def ensure_manifest() -> None:
    from dagster_project.settings import DBT_PROJECT_DIR

    if not (DBT_PROJECT_DIR / "target" / "manifest.json").exists():
        from dagster_project.defs.dbt_manifest import parse_manifest

        console.print("building the dbt manifest (first run)…")
        parse_manifest()


def readable_warehouse(settings) -> Path:
    """What the commands that only read use: the analysts' copy once published, else the
    warehouse itself; a clear error if there is neither."""
    path = (settings.published_warehouse if settings.published_warehouse.exists()
            else settings.warehouse)
    if not path.exists():
        fail(f"no warehouse in {settings.data_dir}: run `observatoire run` first")
    return path


def settings_for(data_dir: Path | None):
    """The settings of a command that only reads or reports (no Dagster run): the
    environment's, with `--data-dir` in place of OBSERVATOIRE_DATA_DIR when given."""
    from dagster_project.settings import load_settings

    if data_dir is None:
        return load_settings()
    return load_settings({**os.environ, "OBSERVATOIRE_DATA_DIR": str(Path(data_dir).resolve())})
