"""What journalists receive: CSV exports, charts and an HTML report.

- `export_month(warehouse, month, exports_dir, dialect="excel-fr") -> list[Path]`
- `export_months(connection, months, exports_dir, dialect="excel-fr") -> list[Path]`
- `top10_chart(warehouse, month, category, out_path) -> Path`
- `territory_chart(warehouse, territory_id, out_path) -> Path`
- `render_report(warehouse, month, exports_dir) -> Path`

Charts and report import matplotlib / jinja2 lazily, so `export_month` stays light.
"""
from __future__ import annotations

from typing import Any

from dagster_project.publish.exports.csv_export import DIALECTS, export_month, export_months

__all__ = ["DIALECTS", "export_month", "export_months", "render_report", "territory_chart", "top10_chart"]


def __getattr__(name: str) -> Any:
    if name in ("top10_chart", "territory_chart"):
        from dagster_project.publish.exports import charts
        return getattr(charts, name)
    if name == "render_report":
        from dagster_project.publish.exports.report import render_report
        return render_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
