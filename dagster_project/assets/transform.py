"""dbt models and tests as Dagster assets and asset checks, built over a month range."""

import os
import datetime as dt
from collections.abc import Mapping
from typing import Any

from dagster import AssetExecutionContext, AssetKey, Config, MetadataValue, Output
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from .. import months as m
from ..partitions import monthly_partitions, single_run, window_months
from ..project import dbt_project
from ..resources import ObservatoireResource
from ..warehouse import connect


class Translator(DagsterDbtTranslator):
    """Groups follow dbt folders; sources map to the load asset's keys (raw/<table>)."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "model":
            return dbt_resource_props["fqn"][1]  # staging | intermediate | marts
        return super().get_group_name(dbt_resource_props)


class TransformConfig(Config):
    full_refresh: bool = False
    """Rebuild the marts from scratch over every month from 2017-10 (ignores the range)."""


def dbt_build_args(full_refresh: bool) -> list[str]:
    # Unit tests run in CI (`make test`), not against production data.
    args = ["build", "--exclude", "test_type:unit"]
    return [*args, "--full-refresh"] if full_refresh else args


def month_env(first: dt.date, last: dt.date) -> dict[str, str]:
    return {"OBSERVATOIRE_MONTH_FROM": first.isoformat(), "OBSERVATOIRE_MONTH_TO": last.isoformat()}


HELD_BACK = {"fct_monthly_rankings", "account_alerts"}


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    partitions_def=monthly_partitions,
    backfill_policy=single_run,
    pool="warehouse",
    dagster_dbt_translator=Translator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)),
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
    held = []
    for event in dbt.cli(dbt_build_args(config.full_refresh), context=context).stream():
        if isinstance(event, Output) and event.output_name in HELD_BACK:
            held.append(event)
        else:
            yield event
    # dbt has exited: the warehouse can be read for the UI's previews.
    with connect(settings.warehouse, read_only=True) as con:
        for event in held:
            extra = (rankings_metadata(con, first, last) if event.output_name == "fct_monthly_rankings"
                     else alerts_metadata(con, first, last))
            yield event.with_metadata({**event.metadata, **extra})


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
        move = "nouveau" if new else ("=" if change == 0 else f"{'▲' if change > 0 else '▼'} {abs(change)}")
        md.append(f"| {rank} | {name} | @{handle}{' (démo)' if demo else ''} | {score} | {move} |")
    return {
        "ranked_rows_in_range": sum(n for _, n in rows),
        "ranked_per_month": MetadataValue.md("\n".join(
            ["| month | ranked |", "|---|---:|"] + [f"| {k} | {n} |" for k, n in rows[-24:]])),
        "accounts_per_category": MetadataValue.json(dict(per_cat)),
        "top10_preview": MetadataValue.md(f"Top 10, {m.month_key(last)}\n" + "\n".join(md)),
        "is_demo": bool(top and any(r[-1] for r in top)),
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
