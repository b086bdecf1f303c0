"""The public web site, rebuilt after each build for the months of the run."""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from dagster_project.defs.partitions import monthly_partitions, single_run, window_months
from dagster_project.defs.resources import ObservatoireResource


@asset(
    key=["site", "public_site"],
    group_name="publication",
    deps=[AssetKey(["exports", "monthly_exports"])],
    partitions_def=monthly_partitions,
    backfill_policy=single_run,
    kinds={"html"},
    description="Static web site <data_dir>/site/ (French, works from file://): index, full "
    "rankings per month and category, one page per ranked territory, method, downloads. "
    "A run re-renders its months' pages, the territories ranked in them and the shared pages.",
)
def public_site(context: AssetExecutionContext, observatoire: ObservatoireResource) -> MaterializeResult:
    from dagster_project.publish.site import build_site

    settings = observatoire.settings()
    months = window_months(context)
    stats = build_site(settings.published_warehouse, settings.exports_dir, settings.site_dir, months)
    context.log.info(f"site: {stats.pages} pages, {stats.bytes / 1e6:.1f} MB in {stats.seconds} s")
    return MaterializeResult(metadata={
        "pages": stats.pages, "files": stats.files, "bytes": stats.bytes,
        "months_rendered": stats.months, "seconds": stats.seconds,
        "index": MetadataValue.path(str(settings.site_dir / "index.html"))})
