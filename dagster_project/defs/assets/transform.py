"""dbt models and tests as Dagster assets and asset checks, built over a month range."""

import datetime as dt
import os
from collections.abc import Mapping
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetSpec,
    Config,
    Failure,
    MetadataValue,
    Output,
)
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)
from dagster_dbt.errors import DagsterDbtCliRuntimeError

from dagster_project import months as m
from dagster_project.defs.automation import FAILED_TESTS
from dagster_project.defs.partitions import monthly_partitions, single_run, window_months
from dagster_project.defs.project import dbt_project
from dagster_project.defs.resources import ObservatoireResource
from dagster_project.warehouse import connect, record_change, writer_lock

RAW = AssetKey(["raw", "instagram"])
# The reference CSVs (dbt sources `reference.*`, seeds/) are in dbt's lineage and docs; in
# Dagster's they are files of the repository, not assets.
REFERENCE_SOURCE = "source.observatoire.reference."


class Translator(DagsterDbtTranslator):
    """Only the marts are Dagster assets; their lineage skips staging/intermediate.

    dbt still builds every model and runs every test in one invocation; Dagster records the
    six marts (a range run writes one event per asset *and month*: 18 models × 109 months
    of events cost a minute on SQLite, 6 marts cost seconds). The `raw` sources map to the load
    asset.
    """

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id) or manifest["sources"].get(unique_id)
        if node is None or node["resource_type"] != "model":
            return spec
        deps = {RAW if up.startswith("source.") else AssetKey(["marts", manifest["nodes"][up]["name"]])
                for up in _upstream_marts_and_sources(manifest, unique_id)
                if not up.startswith(REFERENCE_SOURCE)}
        return spec.replace_attributes(deps=sorted(deps, key=lambda k: k.to_string()),
                                       group_name="marts")


def _upstream_marts_and_sources(manifest: Mapping[str, Any], unique_id: str) -> set[str]:
    """The nearest marts and sources upstream of a node, walking through other models."""
    found: set[str] = set()
    todo = list(manifest["parent_map"].get(unique_id, []))
    seen: set[str] = set()
    while todo:
        up = todo.pop()
        if up in seen:
            continue
        seen.add(up)
        node = manifest["nodes"].get(up)
        if up.startswith("source.") or (node and node["fqn"][1] == "marts"):
            found.add(up)
        elif node is not None:
            todo.extend(manifest["parent_map"].get(up, []))
    return found


class TransformConfig(Config):
    full_refresh: bool = False
    """Rebuild the marts from scratch over every month from 2017-10 (ignores the range)."""


def dbt_build_args(full_refresh: bool) -> list[str]:
    # Unit tests run in CI (`make test`), not against production data.
    args = ["build", "--exclude", "test_type:unit"]
    return [*args, "--full-refresh"] if full_refresh else args


def month_env(first: dt.date, last: dt.date, today: dt.date | None = None) -> dict[str, str]:
    """The range dbt builds, and the month it is built in (from Python's clock, which a
    simulated calendar moves: DuckDB's own date would make every simulated month final)."""
    return {"OBSERVATOIRE_MONTH_FROM": first.isoformat(), "OBSERVATOIRE_MONTH_TO": last.isoformat(),
            "OBSERVATOIRE_CURRENT_MONTH": m.current_month(today).isoformat()}


HELD_BACK = {"fct_monthly_rankings", "account_alerts", "fct_top_posts"}


TRANSLATOR = Translator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select="path:models/marts",
    partitions_def=monthly_partitions,
    backfill_policy=single_run,
    pool="warehouse",
    dagster_dbt_translator=TRANSLATOR,
)
def observatoire_dbt(context: AssetExecutionContext, dbt: DbtCliResource,
                     observatoire: ObservatoireResource, config: TransformConfig):
    months = window_months(context)
    first, last = months[0], months[-1]
    if config.full_refresh:
        first, last = m.FIRST_MONTH, m.current_month()
    settings = observatoire.settings()
    # dbt runs as a subprocess that inherits os.environ (env_var keeps partial parsing).
    os.environ.update(month_env(first, last))
    os.environ["OBSERVATOIRE_DATA_DIR"] = str(settings.data_dir)
    context.log.info(f"dbt build over {m.month_key(first)} → {m.month_key(last)}")
    with writer_lock(settings.data_dir):
        with connect(settings.warehouse) as con:  # the months dbt rewrites, for publishing
            record_change(con, first, last, "transform")
        yield from _build(context, dbt, settings, first, last, config.full_refresh)


def _build(context, dbt, settings, first, last, full_refresh):
    held = []
    selected = context.selected_asset_keys
    # Without `context=`, dagster-dbt reports every node as a plain materialization; the
    # marts become this op's outputs, the others stay in dbt's own log.
    # One target folder per data folder (not one per run): dbt's partial parsing carries on
    # from the last build of this warehouse (its profile names the data folder, so the state
    # parsed elsewhere is never reused: a full parse, ~2 s of every build). Builds of a data
    # folder take turns (writer_lock); the last build's results never pass for this one's.
    target = settings.data_dir / "dbt_target"
    (target / "run_results.json").unlink(missing_ok=True)
    invocation = dbt.cli(dbt_build_args(full_refresh), manifest=dbt_project.manifest_path,
                         dagster_dbt_translator=TRANSLATOR, target_path=target)
    checked: set[str] = set()   # the tests Dagster shows as the marts' checks
    try:
        for event in invocation.stream():
            if isinstance(event, AssetMaterialization) and event.asset_key in selected:
                out = Output(None, output_name=event.asset_key.to_python_identifier(),
                             metadata=event.metadata)
                if event.asset_key.path[-1] in HELD_BACK:
                    held.append(out)
                else:
                    yield out
            elif isinstance(event, AssetCheckEvaluation) and event.asset_key in selected:
                checked.add(event.check_name)
                yield AssetCheckResult(asset_key=event.asset_key, check_name=event.check_name,
                                       passed=event.passed, severity=event.severity,
                                       metadata=event.metadata)
    except DagsterDbtCliRuntimeError as exc:
        try:
            tests = failed_tests(invocation.get_artifact("run_results.json"), checked)
        except (OSError, ValueError):
            tests = []
        if tests:   # on staging / reference models, which are no Dagster asset: said here
            raise Failure(description="blocking data test(s) failed: " + ", ".join(tests),
                          metadata={FAILED_TESTS: MetadataValue.json(tests)}) from exc
        raise
    # dbt has exited: the warehouse can be read for the UI's previews.
    with connect(settings.warehouse, read_only=True) as con:
        for event in held:
            name = event.output_name
            extra = (rankings_metadata(con, first, last) if name.endswith("fct_monthly_rankings")
                     else top_posts_metadata(con, first, last) if name.endswith("fct_top_posts")
                     else alerts_metadata(con, first, last))
            yield event.with_metadata({**event.metadata, **extra})


def failed_tests(run_results: dict, checked: set[str]) -> list[str]:
    """The blocking dbt tests that failed or errored in `run_results` ("name (N rows)"),
    but those Dagster already shows as checks of the marts (`checked`): a test of a staging
    model or of the reference CSVs stops the build too, and has no Dagster check to say so."""
    out = []
    for result in run_results.get("results", []):
        unique_id = str(result.get("unique_id", ""))
        if not unique_id.startswith("test.") or result.get("status") not in ("fail", "error"):
            continue
        name = unique_id.split(".")[2]
        if name not in checked:
            rows = result.get("failures")
            out.append(name + (f" ({rows} rows)" if rows else ""))
    return sorted(out)


def rankings_metadata(con, first, last) -> dict:
    rows = con.execute("""
        select strftime(month, '%Y-%m'), count(*) from marts.fct_monthly_rankings
        where month between ? and ? group by 1 order by 1""", [first, last]).fetchall()
    per_cat = con.execute("""
        select category, count(*) from marts.fct_monthly_rankings where month = ?
        group by 1 order by 1""", [last]).fetchall()
    top = con.execute("""
        select c.label, r.rank, r.territory_name, r.handle, round(r.score, 2), r.rank_change,
               r.is_new_entry, r.is_demo
        from marts.fct_monthly_rankings r join marts.dim_categories c using (category)
        where r.month = ? and r.rank <= 10 order by c.sort_order, r.rank""", [last]).fetchall()
    md, current = [], None
    for label, rank, name, handle, score, change, new, demo in top:
        if label != current:
            md += [f"\n**{label}**\n", "| # | territoire | compte | score | évolution |",
                   "|---:|---|---|---:|---|"]
            current = label
        move = "nouveau" if new else ("stable" if change == 0 else f"{'▲' if change > 0 else '▼'} {abs(change)}")
        md.append(f"| {rank} | {name} | @{handle}{' (démo)' if demo else ''} | {score} | {move} |")
    return {
        "ranked_rows_in_range": sum(n for _, n in rows),
        "ranked_per_month": MetadataValue.md("\n".join(
            ["| month | ranked |", "|---|---:|"] + [f"| {k} | {n} |" for k, n in rows[-24:]])),
        "accounts_per_category": MetadataValue.json(dict(per_cat)),
        "top10_preview": MetadataValue.md(f"Top 10, {m.month_key(last)}\n" + "\n".join(md)),
        "is_demo": bool(top and any(r[-1] for r in top)),
    }


def top_posts_metadata(con, first, last) -> dict:
    best = con.execute("""
        select c.label, p.handle, p.interactions, round(100 * p.engagement, 2)
        from marts.fct_top_posts p join marts.dim_categories c using (category)
        where p.month = ? and p.post_rank = 1 order by c.sort_order""", [last]).fetchall()
    return {
        "posts_in_range": con.execute("""select count(*) from marts.fct_top_posts
                                         where month between ? and ?""", [first, last]).fetchone()[0],
        "best_post_per_category": MetadataValue.md("\n".join(
            [f"Best posts, {m.month_key(last)}", "", "| category | account | interactions | engagement % |",
             "|---|---|---:|---:|"] + [f"| {c} | @{h} | {i} | {e} |" for c, h, i, e in best])),
    }


def alerts_metadata(con, first, last) -> dict:
    counts = con.execute("""
        select alert, count(*) from marts.account_alerts where month between ? and ?
        group by 1""", [first, last]).fetchall()
    latest = con.execute("""
        select territory_name, handle, alert, detail from marts.account_alerts
        where month = ? order by territory_id limit 20""", [last]).fetchall()
    return {
        "alerts_in_range": MetadataValue.json(dict(counts)),
        "latest_month_alerts": MetadataValue.md("\n".join(
            f"- {n} (@{h}): {a} — {d}" for n, h, a, d in latest) or "none"),
    }
