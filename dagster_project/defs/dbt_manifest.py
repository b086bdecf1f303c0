"""Build dbt's manifest (needed by dagster-dbt at import time), or the static docs site.

    python -m dagster_project.defs.dbt_manifest          # dbt parse → dbt_project/target/manifest.json
    python -m dagster_project.defs.dbt_manifest --docs   # dbt docs generate --static
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from dagster_project.settings import DBT_PROJECT_DIR, SEEDS_DIR, load_settings


def dbt_env() -> dict[str, str]:
    settings = load_settings()
    return {
        "OBSERVATOIRE_DATA_DIR": str(settings.data_dir),
        "OBSERVATOIRE_SEEDS_DIR": str(SEEDS_DIR),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }


def run_dbt(args: list[str]) -> None:
    from dbt.cli.main import dbtRunner

    os.environ.update(dbt_env())
    load_settings().data_dir.mkdir(parents=True, exist_ok=True)
    base = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    result = dbtRunner().invoke([*args, *base])
    if not result.success:
        raise SystemExit(f"dbt {' '.join(args)} failed: {result.exception or 'see the log above'}")


PARSE_FILES = ("partial_parse.msgpack", "manifest.json")   # what a parse leaves for the next


def parse_manifest() -> Path:
    """`dbt parse` into a private folder, then its manifest.json (and partial_parse.msgpack)
    renamed over `dbt_project/target/`'s. dagster-dbt reads the manifest whenever a run's
    process loads the definitions: a run starting while `observatoire ui` or `serve` parses
    reads the old manifest or the new one, never a half-written one (dbt rewrites
    target/manifest.json in place: a run launched meanwhile failed on truncated JSON)."""
    target = DBT_PROJECT_DIR / "target"
    target.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".parse-", dir=target))
    try:
        for name in PARSE_FILES:    # partial parsing carries on from the last parse
            if (target / name).exists():
                shutil.copy2(target / name, work / name)
        run_dbt(["parse", "--quiet", "--target-path", str(work)])
        for name in PARSE_FILES:
            os.replace(work / name, target / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target / "manifest.json"


def run_dbt_process(args: list[str], *, warehouse: Path, seeds_dir: Path = SEEDS_DIR,
                    target_dir: Path | None = None) -> None:
    """dbt in its own process of the project environment, on the warehouse file `warehouse`
    (it must be named warehouse.duckdb) and the reference CSVs of `seeds_dir`: nothing of
    this process changes (environment, dbt's global state), and its target folder (default
    next to the warehouse) is its own. The export tests build their warehouse with it."""
    warehouse = Path(warehouse)
    if warehouse.name != "warehouse.duckdb":
        raise ValueError(f"dbt's profile names the file warehouse.duckdb, not {warehouse.name}")
    target = Path(target_dir or warehouse.parent / "dbt_target")
    env = {**os.environ, **dbt_env(), "OBSERVATOIRE_DATA_DIR": str(warehouse.parent),
           "OBSERVATOIRE_SEEDS_DIR": str(seeds_dir), "DBT_TARGET_PATH": str(target),
           "DBT_LOG_PATH": str(target / "logs")}
    cmd = [str(Path(sys.executable).parent / "dbt"), *args, "--project-dir", str(DBT_PROJECT_DIR),
           "--profiles-dir", str(DBT_PROJECT_DIR)]
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"dbt {' '.join(args)} failed:\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}")


def main(argv: list[str]) -> None:
    if "--docs" in argv:
        run_dbt(["docs", "generate", "--static"])
        print(f"docs: {DBT_PROJECT_DIR / 'target' / 'static_index.html'}")
    else:
        os.utime(parse_manifest())  # for make's timestamp


if __name__ == "__main__":
    main(sys.argv[1:])
