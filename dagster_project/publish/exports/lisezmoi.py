"""LISEZMOI.txt, the journalists' notice of a month's files: rendered from the Jinja2
template templates/LISEZMOI.txt.j2 (CRLF line ends, like the CSVs)."""
from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

import jinja2

from dagster_project.publish.exports.month_data import MonthData
from dagster_project.publish.exports.texts import (
    DEMO_NOTICE,
    SOURCE_WORDING,
    count_word,
    french_list,
    top_n_text,
    weights_text,
)
from dagster_project.publish.formatting import month_label_fr
from dagster_project.publish.templating import environment

TEMPLATES = Path(__file__).with_name("templates")


@functools.cache
def _template() -> jinja2.Template:
    """Compiled once per process (a backfill exports every month)."""
    env = environment(TEMPLATES, autoescape=False, keep_trailing_newline=True)
    return env.get_template("LISEZMOI.txt.j2")


def readme_text(data: MonthData, dialect, exported_at: dt.datetime,
                files: list[tuple[str, str]]) -> str:
    """The text of LISEZMOI.txt for `data` (`files`: (name, what it holds) of each file)."""
    weights = weights_text()
    real = data.exported_rows - data.demo_rows
    text = _template().render(
        data=data, dialect=dialect, exported_at=exported_at, files=files,
        label=month_label_fr(data.month), demo_notice=DEMO_NOTICE, real_rows=real,
        weights=weights, kpi_count=count_word(len(weights)),
        weight_list=french_list([str(w) for _, w, _ in weights]),
        top_n=top_n_text(data.categories),
        sources=[SOURCE_WORDING.get(s, s) for s in data.sources or ["graph_api"]])
    return text.replace("\n", "\r\n")
