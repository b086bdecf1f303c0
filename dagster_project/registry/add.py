"""`accounts add`: merge the `ok` rows of a check report into a registry, row by row.

A row is refused, with a message, when its handle is registered for another territory, its
territory has another handle, its territory is unknown, or the Instagram id differs from the
`ig_user_id` the registry already holds for that handle. The registry file is rewritten
atomically and keeps its other columns; `checked_on` and `ig_user_id` are recorded.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dagster_project.registry.accounts import (
    IG_USER_ID_RE,
    is_valid_handle,
    normalize_handle,
    read_rows,
    write_registry,
)

REQUIRED = ("handle", "territory_id", "source_url", "checked_on", "ig_user_id")


@dataclass
class MergeResult:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)   # one message per refused row
    skipped: int = 0                                   # rows whose status is not ok


def merge_report(registry_header: list[str], registry_rows: list[dict[str, str]],
                 report_rows: list[dict[str, str]], territory_ids: frozenset[str],
                 names: dict[str, str]) -> tuple[list[str], list[dict[str, str]], MergeResult]:
    """Pure merge: the new header and rows of the registry, and what happened."""
    header = list(registry_header) + [c for c in REQUIRED if c not in registry_header]
    rows = [dict(r) for r in registry_rows]
    by_handle = {normalize_handle(r.get("handle", "")): r for r in rows}
    by_territory = {r.get("territory_id", "").strip(): r for r in rows}
    result = MergeResult()
    for n, rep in enumerate(report_rows, start=2):
        if (rep.get("status") or "").strip() != "ok":
            result.skipped += 1
            continue
        handle = normalize_handle(rep.get("handle", ""))
        territory = (rep.get("territory_id") or "").strip()
        ig_id = (rep.get("ig_user_id") or "").strip()
        checked_on = (rep.get("checked_at") or "").strip()[:10]
        where = f"report line {n} (@{handle} → {territory or '?'})"
        if not is_valid_handle(handle):
            result.refused.append(f"{where}: invalid handle {rep.get('handle')!r}")
            continue
        if territory not in territory_ids:
            result.refused.append(f"{where}: unknown territory_id {territory!r}")
            continue
        if ig_id and not IG_USER_ID_RE.match(ig_id):
            result.refused.append(f"{where}: invalid ig_user_id {ig_id!r}")
            continue
        mine = by_handle.get(handle)
        theirs = by_territory.get(territory)
        if mine is not None and mine.get("territory_id", "").strip() != territory:
            result.refused.append(f"{where}: @{handle} is already registered for "
                                  f"{mine.get('territory_id')}")
            continue
        if theirs is not None and normalize_handle(theirs.get("handle", "")) != handle:
            result.refused.append(f"{where}: {territory} already has the account "
                                  f"@{normalize_handle(theirs.get('handle', ''))}")
            continue
        if mine is not None:
            known_id = (mine.get("ig_user_id") or "").strip()
            if known_id and ig_id and known_id != ig_id:
                result.refused.append(
                    f"{where}: Instagram id {ig_id} differs from the registry's {known_id}: "
                    "the handle may have been deleted and re-registered; review by hand")
                continue
            mine["checked_on"] = checked_on or mine.get("checked_on", "")
            mine["ig_user_id"] = ig_id or mine.get("ig_user_id", "")
            result.updated.append(handle)
            continue
        row = {c: "" for c in header}
        row.update({"handle": handle, "territory_id": territory,
                    "source_url": f"https://www.instagram.com/{handle}/",
                    "checked_on": checked_on, "ig_user_id": ig_id})
        if "name" in header:
            row["name"] = names.get(territory, "")
        rows.append(row)
        by_handle[handle] = row
        by_territory[territory] = row
        result.added.append(handle)
    return header, rows, result


def add_from_report(registry: Path, report: Path, territory_ids: frozenset[str],
                    names: dict[str, str]) -> MergeResult:
    """Merge `report` into `registry` and rewrite it atomically (only if something changed)."""
    header, rows = read_rows(registry)
    _, report_rows = read_rows(report)
    new_header, new_rows, result = merge_report(header, rows, report_rows, territory_ids, names)
    if result.added or result.updated:
        write_registry(registry, new_header, new_rows)
    return result
