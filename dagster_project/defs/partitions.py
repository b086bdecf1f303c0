"""One monthly partitioning for every asset: 2017-10 through the current month."""
from __future__ import annotations

import datetime as dt

from dagster import BackfillPolicy, MonthlyPartitionsDefinition

from dagster_project import months as m

monthly_partitions = MonthlyPartitionsDefinition(
    start_date=m.FIRST_MONTH.isoformat(), end_offset=1, timezone="UTC", fmt="%Y-%m-%d")

# A backfill is one run over the whole range (one dbt invocation), never one run per month.
single_run = BackfillPolicy.single_run()


def window_months(context) -> list[dt.date]:
    """The months of the run's partition range (one month or a backfill range)."""
    start, end = context.partition_time_window
    return m.month_range(start.date(), m.add_months(end.date(), -1))
