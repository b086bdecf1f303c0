"""The dbt project as Dagster sees it (no @dbt_assets here, so it can be imported to prepare)."""
from __future__ import annotations

import os

from dagster_dbt import DbtProject

from dagster_project.settings import DBT_PROJECT_DIR, SEEDS_DIR

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
os.environ.setdefault("OBSERVATOIRE_SEEDS_DIR", str(SEEDS_DIR))

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# No prepare_if_dev(): under `dagster dev` it re-parses dbt in every process (code server,
# run worker: +6 s each). `make` and `observatoire ui` / `run` build the manifest first.
