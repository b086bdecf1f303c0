"""The Dagster jobs: the whole pipeline, the collection alone, the build from landing files."""
from __future__ import annotations

from dagster import AssetKey, AssetSelection, define_asset_job

COLLECT = AssetSelection.assets(AssetKey(["landing", "instagram_snapshots"]))

monthly_pipeline = define_asset_job(
    "monthly_pipeline", selection=AssetSelection.all(),
    description="Collect → load → dbt build → publish → export, over one month or a range.")

collect_job = define_asset_job(
    "collect_current_month", selection=COLLECT,
    description="Snapshot every registered account from the Graph API into the current month.")

build_job = define_asset_job(
    "build_from_landing",
    selection=AssetSelection.all() - COLLECT,
    description="Load what is landed for a month, rebuild its rankings, publish and export.")

jobs = [monthly_pipeline, collect_job, build_job]


def resource_config(source: str) -> dict:
    """Run config that sets the run's data folder (from the environment) and source."""
    from dagster_project.settings import load_settings

    return {"resources": {"observatoire": {"config": {
        "data_dir": str(load_settings().data_dir), "source": source}}}}
