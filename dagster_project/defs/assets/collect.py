"""Collection: landing files for each month of the partition range, from the chosen source."""

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from dagster_project import months as m
from dagster_project.archive.landing import month_files
from dagster_project.defs.partitions import monthly_partitions, single_run, window_months
from dagster_project.defs.resources import ObservatoireResource
from dagster_project.registry.accounts import read_registry
from dagster_project.registry.territories import territory_ids


@asset(
    key=["landing", "instagram_snapshots"],
    group_name="collection",
    partitions_def=monthly_partitions,
    backfill_policy=single_run,
    description="Raw Instagram snapshots as NDJSON landing files "
    "(<data_dir>/landing/instagram/<YYYY-MM>/), from the demo simulator, the Graph API "
    "(current month only) or files already landed.",
    kinds={"python", "file"},
)
def instagram_snapshots(context: AssetExecutionContext,
                        observatoire: ObservatoireResource) -> MaterializeResult:
    observatoire.check()
    settings = observatoire.settings()
    months = window_months(context)
    source = observatoire.source
    meta: dict = {"source": source, "months": len(months),
                  "range": f"{m.month_key(months[0])} → {m.month_key(months[-1])}"}
    if source == "demo":
        from dagster_project.collect import demo

        registry = observatoire.registry_path()
        if not observatoire.accounts_file:
            demo.ensure_registry(registry, settings.accounts_file, territory_ids(),
                                 scale=observatoire.scale)
        accounts, _rejected = read_registry(registry, territory_ids())
        result = demo.simulate(accounts, months, settings.landing_dir)
        meta |= {"accounts": result.accounts, "snapshots": result.snapshots,
                 "media": result.media, "demo": True}
        context.log.info(f"demo: {result.snapshots} snapshots, {result.media} posts "
                         f"for {result.accounts} accounts over {len(months)} months")
    elif source == "graph_api":
        from dagster_project.collect import graph_api
        from dagster_project.collect.night import night_failure
        from dagster_project.collect.window import CollectionBusy, collect_today

        try:
            m.require_current_month(months)
        except ValueError as exc:
            raise Failure(str(exc)) from None
        accounts, rejected = read_registry(observatoire.registry_path(), territory_ids())
        for r in rejected:
            context.log.warning(r.reason)

        def progress(p: dict) -> None:
            if p.get("done", 0) % 100 == 0 or p.get("remaining", 1) == 0:
                context.log.info(f"graph_api: {p}")

        try:
            day = collect_today(accounts, settings, progress=progress)
        except graph_api.TokenError as exc:
            raise Failure(str(exc)) from None
        except (ValueError, CollectionBusy) as exc:  # a malformed setting, a run already on
            raise Failure(str(exc)) from None
        result, status = day.result, day.status
        meta |= day.as_metadata()
        context.log.info(
            f"graph_api: {status.collected}/{status.total} accounts collected this month, "
            f"{status.remaining} left, {day.plan.days_left} window day(s) left; this run: "
            f"{result.collected} collected, {result.requests} requests, "
            f"{result.stopped_reason or 'every account done'}, {len(result.pauses)} "
            f"throttling hold(s) for {result.paused_s:.0f} s")
        if result.left:
            context.log.warning(f"graph_api: {len(result.left)} account(s) left for the next "
                                f"run: {graph_api.name_some(result.left)}")
        if result.error or result.throttled:
            commonest = result.errors.most_common(1)
            context.log.warning(f"graph_api: {result.error} accounts failed, "
                                f"{result.throttled} throttling waits"
                                + (f"; commonest error ({commonest[0][1]}×): {commonest[0][0]}"
                                   if commonest else ""))
        if night_failure(result) is not None:  # recorded and sent by collect_today
            context.log.warning("graph_api: more than half of this run's accounts failed: "
                                "alerted as collection_failing (once a night)")
    else:  # landing: what is already there
        files = {mo: month_files(settings.landing_dir, mo) for mo in months}
        missing = [m.month_key(mo) for mo, f in files.items() if not f]
        meta |= {"files": sum(len(f) for f in files.values()),
                 "months_without_files": ", ".join(missing) or "none"}
        if missing:
            context.log.warning(f"no landing files for {', '.join(missing)}")
    return MaterializeResult(metadata={k: _meta(v) for k, v in meta.items()})


def _meta(v):
    return MetadataValue.text(v) if isinstance(v, str) else v
