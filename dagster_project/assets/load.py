"""Load: landing files and the accounts registry into the warehouse's `raw` schema."""

from dagster import (AssetExecutionContext, AssetKey, AssetSpec, MaterializeResult, MetadataValue,
                     multi_asset)

from .. import months as m
from ..loader import load_months, load_registry
from ..partitions import monthly_partitions, single_run, window_months
from ..reference import territory_ids
from ..resources import ObservatoireResource

RAW_TABLES = {
    "snapshots": "One row per valid landing line (snapshot of one account).",
    "media": "Posts returned with each snapshot.",
    "accounts": "The valid rows of the accounts registry.",
    "rejected_lines": "Landing lines that could not be loaded, with file, line and reason.",
}
COLLECTED = AssetKey(["landing", "instagram_snapshots"])


@multi_asset(
    specs=[AssetSpec(["raw", name], description=desc, deps=[COLLECTED], group_name="raw",
                     kinds={"duckdb"})
           for name, desc in RAW_TABLES.items()],
    partitions_def=monthly_partitions,
    backfill_policy=single_run,
    pool="warehouse",
    can_subset=False,
)
def raw_instagram(context: AssetExecutionContext, observatoire: ObservatoireResource):
    """Idempotent per month: a month's raw rows are replaced by what its folder holds."""
    settings = observatoire.settings()
    months = window_months(context)
    n_accounts, rejected_accounts = load_registry(
        settings.warehouse, observatoire.registry_path(), territory_ids())
    for r in rejected_accounts:
        context.log.warning(f"registry rejected: {r.reason}")
    result = load_months(settings.warehouse, settings.landing_dir, months)
    for file, line, reason in result.rejected_samples:
        context.log.warning(f"rejected {file}:{line}: {reason}")
    per_month = "\n".join(
        ["| month | files | lines | loaded | rejected | posts |", "|---|---:|---:|---:|---:|---:|"]
        + [f"| {m.month_key(x.month)} | {x.files} | {x.lines} | {x.loaded} | {x.rejected} | {x.media} |"
           for x in result.months[-24:]])
    rejected_md = "\n".join(f"- `{f}:{ln}` {reason}" for f, ln, reason in result.rejected_samples)
    yield MaterializeResult(asset_key=["raw", "snapshots"], metadata={
        "rows_loaded": result.loaded, "lines_rejected": result.rejected,
        "months": len(months), "rows_per_month": MetadataValue.md(per_month),
        "rejected_sample": MetadataValue.md(rejected_md or "none")})
    yield MaterializeResult(asset_key=["raw", "media"], metadata={"rows_loaded": result.media})
    yield MaterializeResult(asset_key=["raw", "accounts"], metadata={
        "accounts": n_accounts, "rejected_rows": len(rejected_accounts),
        "rejected": MetadataValue.md("\n".join(f"- {r.reason}" for r in rejected_accounts) or "none")})
    yield MaterializeResult(asset_key=["raw", "rejected_lines"],
                            metadata={"lines_rejected": result.rejected})
