"""Départements and régions of a month: each area's ranked territories, all categories.

A territory belongs to the département and the région of the vintage in force
(`code_departement`, `code_region` of `marts.fct_monthly_rankings`; an EPCI's are those of
its most populous commune). A région belongs to no département; a département belongs to
its own département and to its région.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KINDS = {"departement": ("departements", "code_departement", "departement_name",
                         "rank_in_departement", "rank_in_departement_change"),
         "region": ("regions", "code_region", "region_name",
                    "rank_in_region", "rank_in_region_change")}


@dataclass
class Area:
    kind: str                      # departement | region
    code: str                      # INSEE code: 32, 2A, 971; 76
    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)   # category order, then rank

    @property
    def folder(self) -> str:
        return KINDS[self.kind][0]

    @property
    def file_name(self) -> str:
        return f"{self.folder}/{self.code}.csv"

    def local_rank(self, row: dict[str, Any]) -> int | None:
        return row.get(KINDS[self.kind][3])

    def local_change(self, row: dict[str, Any]) -> int | None:
        return row.get(KINDS[self.kind][4])


def group_by_area(rows: list[dict[str, Any]], kind: str) -> list[Area]:
    """Every area of `kind` with at least one ranked territory, by code; each area's rows
    keep the order of `rows` (category order, then national rank)."""
    _, code_col, name_col, _, _ = KINDS[kind]
    areas: dict[str, Area] = {}
    for row in rows:
        code = row.get(code_col)
        if code is None:
            continue
        area = areas.get(code)
        if area is None:
            area = areas[code] = Area(kind, code, row.get(name_col) or code)
        area.rows.append(row)
    return [areas[c] for c in sorted(areas)]
