"""Publication: the analysts' read-only copy of the warehouse, and the journalists' exports."""


from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from dagster_project import months as m
from dagster_project.defs.partitions import monthly_partitions, single_run, window_months
from dagster_project.defs.resources import ObservatoireResource
from dagster_project.publish.warehouse_copy import publish
from dagster_project.warehouse import connect, writer_lock

MARTS = [AssetKey(["marts", k]) for k in ("dim_territories", "dim_categories", "fct_account_monthly",
                               "fct_monthly_rankings", "account_alerts", "fct_top_posts")]
# Charts and the HTML report cost ~2 s a month: a backfill renders them for its last month
# only (every month still gets its CSV files); `observatoire export --month` renders any month.
REPORT_MONTHS = 1


@asset(
    key=["published", "warehouse"],
    group_name="publication",
    deps=MARTS,
    partitions_def=monthly_partitions,
    backfill_policy=single_run,
    pool="warehouse",
    kinds={"duckdb"},
    description="Read-only copy of the warehouse for analysts "
    "(<data_dir>/published/warehouse.duckdb, a link to the copy in force), swapped atomically "
    "after each successful build; each publication copies only the months that changed.",
)
def published_warehouse(context: AssetExecutionContext,
                        observatoire: ObservatoireResource) -> MaterializeResult:
    settings = observatoire.settings()
    with writer_lock(settings.data_dir):
        pub = publish(settings.warehouse, settings.published_warehouse)
    context.log.info(f"published ({pub.mode}, {pub.months} month(s)) in {pub.seconds} s")
    return MaterializeResult(metadata={"path": MetadataValue.path(str(pub.path)),
                                       "copy": MetadataValue.path(str(pub.slot)),
                                       "mode": pub.mode, "months_copied": pub.months,
                                       "seconds": pub.seconds,
                                       "bytes": pub.slot.stat().st_size})


@asset(
    key=["exports", "monthly_exports"],
    group_name="publication",
    deps=[AssetKey(["published", "warehouse"])],
    partitions_def=monthly_partitions,
    backfill_policy=single_run,
    kinds={"csv", "html"},
    description="Journalists' files per month: <category>.csv (Top N), alertes.csv, "
    "LISEZMOI.txt (excel-fr), Top 10 charts and rapport.html under <data_dir>/exports/<YYYY-MM>/.",
)
def monthly_exports(context: AssetExecutionContext,
                    observatoire: ObservatoireResource) -> MaterializeResult:
    from dagster_project.publish.exports import export_months
    from dagster_project.publish.exports.month_data import months_with_data
    from dagster_project.publish.exports.report import render_report

    settings = observatoire.settings()
    published = settings.published_warehouse  # never the file being written by another run
    window = window_months(context)
    months = months_with_data(published, window)
    empty = [m.month_key(mo) for mo in window if mo not in months]
    if empty:
        context.log.warning(f"no data (no rankings, no alerts) for {len(empty)} month(s), "
                            f"not exported: {', '.join(empty)}")
    if not months:
        return MaterializeResult(metadata={"months": 0, "files": 0,
                                           "months_without_data": ", ".join(empty)})
    # One connection, and one partitioned COPY per file family for many months at a time.
    with connect(published, read_only=True) as con:
        files = len(export_months(con, months, settings.exports_dir))
    for month in months[-REPORT_MONTHS:]:
        render_report(published, month, settings.exports_dir)
        files += 1
    last = settings.exports_dir / m.month_key(months[-1])
    return MaterializeResult(metadata={
        "months": len(months), "files": files,
        "months_without_data": ", ".join(empty) or "none",
        "latest_folder": MetadataValue.path(str(last)),
        "report": MetadataValue.path(str(last / "rapport.html"))})
