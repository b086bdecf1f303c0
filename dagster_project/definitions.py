"""The one Dagster code location: assets, checks, jobs, schedules, sensor, resources."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

from dagster import BetaWarning, Definitions, PreviewWarning, in_process_executor

warnings.filterwarnings("ignore", category=BetaWarning)  # backfill_policy is "beta"
warnings.filterwarnings("ignore", category=PreviewWarning)
from dagster_dbt import DbtCliResource

from .defs.assets.collect import instagram_snapshots
from .defs.assets.load import raw_instagram
from .defs.assets.publish import monthly_exports, published_warehouse
from .defs.assets.site import public_site
from .defs.assets.transform import observatoire_dbt
from .defs.automation import nightly_archive
from .defs.jobs import jobs
from .defs.project import dbt_project
from .defs.resources import default_resource
from .defs.schedules import schedules
from .defs.sensors import sensors

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
