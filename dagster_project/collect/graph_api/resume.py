"""Resumption: which accounts of the month are already collected, from its landing files.

Resumption: an account with a snapshot of status ok, not_found or not_business fetched this
month is collected; it is skipped by later runs of the month. `error` accounts are retried.
"""
from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
from pathlib import Path

from dagster_project.archive.landing import iter_month_files
from dagster_project.collect.graph_api.client import utc
from dagster_project.registry.accounts import normalize_handle

log = logging.getLogger(__name__)

COLLECTED_STATUSES = frozenset({"ok", "not_found", "not_business"})


def read_ok_handles(folder: Path, month: dt.date) -> set[str]:
    """Handles with an `ok` snapshot fetched in `month` in the month's landing files."""
    return {h for h, (status, _at) in read_month_statuses(folder, month).items()
            if status == "ok"}


def read_collected_handles(folder: Path, month: dt.date) -> set[str]:
    """Handles collected in `month`: a snapshot of status ok, not_found or not_business."""
    return {h for h, (status, _at) in read_month_statuses(folder, month).items()
            if status in COLLECTED_STATUSES}


def read_month_statuses(folder: Path, month: dt.date) -> dict[str, tuple[str, dt.datetime]]:
    """handle → (status, fetched_at) of its month: the latest ok / not_found / not_business
    snapshot fetched in `month` if any, else its latest snapshot (an `error`).

    Malformed lines, unreadable/truncated files and `demo` lines are ignored silently.
    """
    out: dict[str, tuple[str, dt.datetime]] = {}

    def rank(status: str, when: dt.datetime) -> tuple[bool, dt.datetime]:
        return status in COLLECTED_STATUSES, when

    for path in iter_month_files(folder):
        opener = gzip.open if path.name.endswith(".gz") else open
        try:
            with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
                for raw in fh:
                    try:
                        obj = json.loads(raw)
                    except ValueError:
                        continue
                    if not isinstance(obj, dict) or not isinstance(obj.get("status"), str):
                        continue
                    status = obj["status"]
                    handle, fetched = obj.get("handle"), obj.get("fetched_at")
                    if not isinstance(handle, str) or obj.get("source") == "demo":
                        continue
                    if not isinstance(fetched, str):
                        continue
                    try:
                        when = utc(dt.datetime.fromisoformat(fetched))
                    except ValueError:
                        continue
                    if when.year != month.year or when.month != month.month:
                        continue
                    key = normalize_handle(handle)
                    seen = out.get(key)
                    if seen is None or rank(status, when) >= rank(*seen):
                        out[key] = (status, when)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            log.debug("landing file %s partly unreadable (%s): lines read so far kept",
                      path.name, type(exc).__name__)
    return out
