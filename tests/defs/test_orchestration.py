"""Pure pieces of the Dagster glue: schedules, dbt arguments, lineage, instance (the landing
sensor: test_landing_sensor.py)."""
import datetime as dt

from dagster import (
    RunRequest,
    SkipReason,
    build_schedule_context,
)

from dagster_project.definitions import defs
from dagster_project.defs.assets.transform import dbt_build_args, month_env
from dagster_project.defs.instance import ensure_instance
from dagster_project.defs.schedules import graph_api_collection, monthly_publication


def test_dbt_args_and_month_env():
    assert dbt_build_args(False) == ["build", "--exclude", "test_type:unit"]
    assert dbt_build_args(True)[-1] == "--full-refresh"
    assert month_env(dt.date(2021, 6, 1), dt.date(2021, 8, 1), dt.date(2021, 8, 31)) == {
        "OBSERVATOIRE_MONTH_FROM": "2021-06-01", "OBSERVATOIRE_MONTH_TO": "2021-08-01",
        "OBSERVATOIRE_CURRENT_MONTH": "2021-08-01"}


def test_lineage_is_one_graph_with_marts_after_raw():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {"landing/instagram_snapshots", "raw/instagram", "marts/dim_territories",
                    "marts/dim_categories", "marts/fct_account_monthly",
                    "marts/fct_monthly_rankings", "marts/account_alerts", "marts/fct_top_posts",
                    "published/warehouse", "exports/monthly_exports", "site/public_site"}
    parents = {p.to_user_string() for p in graph.get(
        next(k for k in graph.get_all_asset_keys() if k.path[-1] == "fct_monthly_rankings")).parent_keys}
    assert parents == {"raw/instagram"}
    checks = {c.name for c in graph.asset_check_keys}
    assert "contiguous_ranks_fct_monthly_rankings_rank__month__category" in checks
    assert "ranked_accounts_have_reference_snapshot" in checks


def test_collection_schedule_runs_every_day_of_the_window(monkeypatch):
    monkeypatch.delenv("OBSERVATOIRE_COLLECTION_WINDOW_DAYS", raising=False)
    assert graph_api_collection.cron_schedule == "0 2 22-31 * *"  # February's last 7 days
    assert graph_api_collection.execution_timezone == "Europe/Paris"

    def evaluate(day: dt.date):
        return graph_api_collection(build_schedule_context(
            scheduled_execution_time=dt.datetime.combine(day, dt.time(2, 0))))

    july = [evaluate(dt.date(2021, 7, d)) for d in range(22, 32)]
    assert [isinstance(r, SkipReason) for r in july] == [True] * 3 + [False] * 7
    runs = july[3:]
    assert all(isinstance(r, RunRequest) for r in runs)
    assert len({r.run_key for r in runs}) == 7  # one run a day, none deduplicated away
    assert {r.partition_key for r in runs} == {"2021-07-01"}
    assert [r.tags["observatoire/collection_day"] for r in runs] == [f"{i}/7" for i in range(1, 8)]
    assert runs[0].run_config["resources"]["observatoire"]["config"]["source"] == "graph_api"
    assert isinstance(evaluate(dt.date(2024, 2, 22)), SkipReason)
    assert not isinstance(evaluate(dt.date(2024, 2, 23)), SkipReason)  # leap February
    monkeypatch.setenv("OBSERVATOIRE_COLLECTION_WINDOW_DAYS", "2")
    assert isinstance(evaluate(dt.date(2021, 7, 29)), SkipReason)
    assert evaluate(dt.date(2021, 7, 30)).tags["observatoire/collection_day"] == "1/2"


def test_publication_schedule_builds_the_month_just_finished(tmp_path, monkeypatch):
    monkeypatch.setenv("OBSERVATOIRE_DATA_DIR", str(tmp_path))
    july = tmp_path / "landing" / "instagram" / "2021-07"
    july.mkdir(parents=True)
    (july / "graph_api-20210731T000000Z-0001.ndjson.gz").write_bytes(b"")
    ctx = build_schedule_context(scheduled_execution_time=dt.datetime(2021, 8, 1, 6, 0))
    request = monthly_publication(ctx)
    assert request.partition_key == "2021-07-01"
    assert request.run_config["resources"]["observatoire"]["config"]["source"] == "landing"
    # a month with nothing landed (an observatory installed after its window) is not built:
    # the build would fail at the site step, an alert with nothing to do about it
    june = monthly_publication(build_schedule_context(
        scheduled_execution_time=dt.datetime(2021, 7, 1, 6, 0)))
    assert isinstance(june, SkipReason) and "nothing landed for 2021-06" in june.skip_message


def test_instance_settings_limit_the_warehouse_pool(tmp_path):
    config = ensure_instance(tmp_path / "home")
    text = config.read_text()
    assert "default_limit: 1" in text and "pools:" in text
    config.write_text(text + "# edited\n")
    ensure_instance(tmp_path / "home")                   # never overwritten
    assert config.read_text().endswith("# edited\n")


def test_cli_range_tags_are_the_ones_dagster_uses():
    """The CLI names Dagster's range tags itself (no private import in the product); this
    test, and only it, checks them against Dagster's own constants."""
    from dagster._core.storage import tags

    from dagster_project.cli import run as cli

    assert cli.ASSET_PARTITION_RANGE_START_TAG == tags.ASSET_PARTITION_RANGE_START_TAG
    assert cli.ASSET_PARTITION_RANGE_END_TAG == tags.ASSET_PARTITION_RANGE_END_TAG
