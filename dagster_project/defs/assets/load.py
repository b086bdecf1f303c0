"""Load: landing files and the accounts registry into the warehouse's `raw` schema."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    asset,
)

from dagster_project import months as m
from dagster_project.archive import verify as archive
from dagster_project.defs.partitions import monthly_partitions, single_run, window_months
from dagster_project.defs.resources import ObservatoireResource
from dagster_project.load.registry import load_registry
from dagster_project.load.snapshots import load_months
from dagster_project.registry.territories import territory_ids
from dagster_project.warehouse import writer_lock

COLLECTED = AssetKey(["landing", "instagram_snapshots"])
RAW = AssetKey(["raw", "instagram"])
ARCHIVE_CHECK = "archive_verified"


@asset(
    key=RAW,
    deps=[COLLECTED],
    check_specs=[AssetCheckSpec(
        ARCHIVE_CHECK, asset=RAW,
        description="`observatoire verify` on the run's months: every landing file matches "
        "its manifest line (SHA-256, size) and raw holds, per file, its lines loaded + "
        "rejected.")],
    group_name="raw",
    kinds={"duckdb"},
    partitions_def=monthly_partitions,
    backfill_policy=single_run,
    pool="warehouse",
    description="Tables raw.snapshots (one row per valid landing line), raw.media (posts of "
    "each snapshot; a permalink that is not an Instagram post URL is stored as null and "
    "counted in raw.load_files.permalinks_dropped), raw.rejected_lines (bad lines with file, "
    "line, reason), raw.load_files, "
    "raw.accounts and raw.rejected_accounts (the registry). Idempotent per month: a month's "
    "rows are replaced by what its landing folder holds.",
)
def raw_instagram(context: AssetExecutionContext, observatoire: ObservatoireResource):
    settings = observatoire.settings()
    months = window_months(context)
    with writer_lock(settings.data_dir):
        n_accounts, rejected_accounts = load_registry(
            settings.warehouse, observatoire.registry_path(), territory_ids())
        result = load_months(settings.warehouse, settings.landing_dir, months)
        report = archive.verify(settings.landing_dir, settings.warehouse,
                                [m.month_key(x) for x in months], data_dir=settings.data_dir)
    for finding in report.errors:
        context.log.error(f"archive: {finding}")
    check = AssetCheckResult(
        check_name=ARCHIVE_CHECK, asset_key=RAW, passed=report.ok,
        severity=AssetCheckSeverity.ERROR,
        metadata={"files": report.files, "checked_against_raw": report.loaded,
                  "problems": len(report.errors),
                  "details": MetadataValue.md("\n".join(
                      f"- `{f.file}` {f.problem} → {f.todo}" for f in report.errors[:50])
                      or "none")})
    for r in rejected_accounts:
        context.log.warning(f"registry rejected: {r.reason}")
    for file, line, reason in result.rejected_samples:
        context.log.warning(f"rejected {file}:{line}: {reason}")
    for file, line, note in result.corrected_samples:   # loaded, with a value set to null
        context.log.warning(f"loaded with a fix {file}:{line}: {note}")
    per_month = "\n".join(
        ["| month | files | lines | loaded | rejected | posts | permalinks dropped |",
         "|---|---:|---:|---:|---:|---:|---:|"]
        + [f"| {m.month_key(x.month)} | {x.files} | {x.lines} | {x.loaded} | {x.rejected} "
           f"| {x.media} | {x.permalinks_dropped} |" for x in result.months[-24:]])
    rejected_md = "\n".join(f"- `{f}:{ln}` {reason}" for f, ln, reason in result.rejected_samples)
    corrected_md = "\n".join(f"- `{f}:{ln}` {note}" for f, ln, note in result.corrected_samples)
    return MaterializeResult(check_results=[check], metadata={
        "snapshots_loaded": result.loaded, "posts_loaded": result.media,
        "lines_rejected": result.rejected, "months": len(months),
        "permalinks_dropped": result.permalinks_dropped,
        "rows_per_month": MetadataValue.md(per_month),
        "rejected_sample": MetadataValue.md(rejected_md or "none"),
        "corrected_sample": MetadataValue.md(corrected_md or "none"),
        "accounts": n_accounts, "registry_rows_rejected": len(rejected_accounts),
        "registry_rejected": MetadataValue.md(
            "\n".join(f"- {r.reason}" for r in rejected_accounts) or "none")})
