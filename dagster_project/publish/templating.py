"""The Jinja environment of everything published (the site, the report, LISEZMOI.txt): the
same French filters everywhere; each caller adds the filters only its templates use."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from dagster_project.months import month_key
from dagster_project.publish.formatting import (
    evolution,
    fmt_decimal,
    fmt_ts,
    fr_int,
    fr_number,
    fr_pct,
    month_label_fr,
    signed,
)
from dagster_project.publish.urls import profile_url, safe_url

FILTERS: dict[str, Any] = {
    "num": fr_number,                        # 1 234,56 (reading)
    "decimal": lambda v, d=2, scale=1.0: fmt_decimal(v, d, ",", scale) or "—",   # 1234,56
    "int_fr": fr_int,
    "pct": fr_pct,
    "signed": signed,
    "evolution": lambda row: evolution(row.get("rank_change"), row.get("is_new_entry")),
    "month_fr": lambda d: month_label_fr(d) if d else "—",
    "month_key": month_key,
    "date_fr": lambda t: t.strftime("%d/%m/%Y") if t else "—",
    "ts": fmt_ts,                            # 06/12/2026 23:15 UTC
    "ts_fr": lambda t: t.strftime("%d/%m/%Y à %H:%M UTC") if t else "—",
    # every URL that comes with the data: None (no link) unless https to Instagram
    "safe_url": safe_url,
    "profile_url": profile_url,
}


def environment(templates: Path, *, autoescape: bool = True, keep_trailing_newline: bool = False,
                **filters: Any) -> jinja2.Environment:
    """Templates of `templates`, strict about undefined names, with FILTERS and `filters`."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates)),
                             autoescape=autoescape, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=keep_trailing_newline)
    env.filters.update(FILTERS, **filters)
    return env
