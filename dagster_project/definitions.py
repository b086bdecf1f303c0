"""The one Dagster code location: assets, checks, jobs, schedules, sensor, resources."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

from dagster import BetaWarning, Definitions, PreviewWarning, in_process_executor

warnings.filterwarnings("ignore", category=BetaWarning)  # backfill_policy is "beta"
warnings.filterwarnings("ignore", category=PreviewWarning)
from dagster_dbt import DbtCliResource

from dagster_project.defs.assets.collect import instagram_snapshots
from dagster_project.defs.assets.load import raw_instagram
from dagster_project.defs.assets.publish import monthly_exports, published_warehouse
from dagster_project.defs.assets.site import public_site
from dagster_project.defs.assets.transform import observatoire_dbt
from dagster_project.defs.automation import nightly_archive
from dagster_project.defs.jobs import jobs
from dagster_project.defs.project import dbt_project
from dagster_project.defs.resources import default_resource
from dagster_project.defs.schedules import schedules
from dagster_project.defs.sensors import sensors

defs = Definitions(
    assets=[instagram_snapshots, raw_instagram, observatoire_dbt, published_warehouse,
            monthly_exports, public_site],
    jobs=[*jobs, nightly_archive],
    schedules=schedules,
    sensors=sensors,
    # The pipeline is a chain of steps: a process per step would buy no parallelism and cost
    # a Python start and imports each. Writer steps still queue on pool "warehouse".
    executor=in_process_executor,
    resources={
        "observatoire": default_resource(),
        # the project environment's dbt, whether or not .venv/bin is on PATH
        "dbt": DbtCliResource(project_dir=dbt_project,
                              dbt_executable=str(Path(sys.executable).parent / "dbt")),
    },
)
