"""Build dbt's manifest (needed by dagster-dbt at import time), or the static docs site.

    python -m dagster_project.dbt_manifest          # dbt parse → dbt_project/target/manifest.json
    python -m dagster_project.dbt_manifest --docs   # dbt docs generate --static
"""
from __future__ import annotations

import os
import sys

from .settings import DBT_PROJECT_DIR, SEEDS_DIR, load_settings


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


def main(argv: list[str]) -> None:
    if "--docs" in argv:
        run_dbt(["docs", "generate", "--static"])
        print(f"docs: {DBT_PROJECT_DIR / 'target' / 'static_index.html'}")
    else:
        run_dbt(["parse", "--quiet"])
        os.utime(DBT_PROJECT_DIR / "target" / "manifest.json")  # for make's timestamp


if __name__ == "__main__":
    main(sys.argv[1:])
