"""Verify handles with the Graph API's business_discovery, through the collector's client
(same token rules, rate limits and retries as the monthly collection).

Output columns: handle,territory_id,status,followers,ig_user_id,name,checked_at with status
ok | not_found | not_business | error | invalid. Invalid handles are never sent. Each
result is appended and flushed as soon as it is known, so an interrupted check loses at most
the accounts in flight; a re-run skips the handles already checked (an `error` is retried)
and the file is finally rewritten with one row per handle.
"""
from __future__ import annotations

import csv
import datetime as dt
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from dagster_project.collect.graph_api import CollectorOptions, open_client
from dagster_project.registry.accounts import is_valid_handle, normalize_handle, write_registry
from dagster_project.settings import Settings

COLUMNS = ("handle", "territory_id", "status", "followers", "ig_user_id", "name", "checked_at")
FINAL_STATUSES = frozenset({"ok", "not_found", "not_business", "invalid"})
# One page of one post is enough to verify an account: the cheapest business_discovery call.
CHECK_OPTIONS = CollectorOptions(page_size=1, max_pages=1)


@dataclass(frozen=True)
class ToCheck:
    handle: str          # normalised
    territory_id: str
    raw_handle: str
    invalid: bool


def read_input(path: Path) -> list[ToCheck]:
    """Handles to check from any CSV with `handle` and `territory_id` columns (a registry, or
    the output of `discover`: its `invalid` rows stay invalid). One entry per handle."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        first = fh.readline()
        fh.seek(0)
        delimiter = ";" if first.count(";") > first.count(",") else ","
        reader = csv.DictReader(fh, delimiter=delimiter)
        fields = {f.strip().lower() for f in reader.fieldnames or []}
        if "handle" not in fields:
            raise ValueError(f"{path}: no `handle` column (header: {sorted(fields)})")
        out: dict[str, ToCheck] = {}
        for row in reader:
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
            raw = row.get("handle", "")
            if not raw and not row.get("territory_id"):
                continue
            handle = normalize_handle(raw)
            bad = not is_valid_handle(handle) or row.get("status") == "invalid"
            key = handle if not bad else f"invalid:{raw}:{row.get('territory_id', '')}"
            out.setdefault(key, ToCheck(handle if not bad else raw, row.get("territory_id", ""),
                                        raw, bad))
    return list(out.values())


def read_done(path: Path) -> dict[str, dict[str, str]]:
    """Rows already in an output file, by handle (the last row of a handle wins)."""
    if not Path(path).exists():
        return {}
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return {row["handle"]: row for row in csv.DictReader(fh) if row.get("handle")}


def result_row(item: ToCheck, record: dict | None, checked_at: str) -> dict[str, str]:
    """The output row of one account from the collector's landing record (pure)."""
    if item.invalid:
        return {"handle": item.raw_handle, "territory_id": item.territory_id, "status": "invalid",
                "followers": "", "ig_user_id": "", "name": "", "checked_at": checked_at}
    bd = (record or {}).get("business_discovery") or {}
    status = (record or {}).get("status") or "error"
    followers = bd.get("followers_count")
    return {"handle": item.handle, "territory_id": item.territory_id, "status": status,
            "followers": str(followers) if isinstance(followers, int) else "",
            "ig_user_id": str(bd.get("id") or "") if status == "ok" else "",
            "name": str(bd.get("name") or "") if status == "ok" else "",
            "checked_at": checked_at}


def check_accounts(items: Iterable[ToCheck], out: Path, settings: Settings, *,
                   max_in_flight: int = 4, options: CollectorOptions | None = None,
                   progress: Callable[[dict[str, str]], None] | None = None,
                   now: Callable[[], dt.datetime] | None = None) -> dict[str, int]:
    """Check every handle not already checked in `out`; returns the counts by status of
    the whole output file. Raises TokenError (token missing or rejected) at once, keeping
    what was written."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    now = now or (lambda: dt.datetime.now(dt.UTC))
    done = read_done(out)
    items = list(items)
    todo = [i for i in items if (i.raw_handle if i.invalid else i.handle) not in done
            or done[i.raw_handle if i.invalid else i.handle].get("status") not in FINAL_STATUSES]
    stop = threading.Event()
    client = open_client(settings, options or CHECK_OPTIONS, max_in_flight, stop) if any(
        not i.invalid for i in todo) else None
    lock = threading.Lock()
    fresh = not out.exists() or out.stat().st_size == 0
    try:
        with open(out, "a", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(COLUMNS), lineterminator="\n")
            if fresh:
                writer.writeheader()
                fh.flush()

            def one(item: ToCheck) -> None:
                record = None if item.invalid else client.collect_account(item.handle)
                if record is None and not item.invalid:
                    return  # cancelled (stopping)
                stamp = now().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                row = result_row(item, record, stamp)
                with lock:
                    writer.writerow(row)
                    fh.flush()
                    done[row["handle"]] = row
                if progress is not None:
                    progress(row)

            with ThreadPoolExecutor(max_workers=max_in_flight,
                                    thread_name_prefix="check") as pool:
                futures = [pool.submit(one, i) for i in todo]
                try:
                    for f in futures:
                        f.result()
                except BaseException:
                    stop.set()
                    for f in futures:
                        f.cancel()
                    raise
    finally:
        if client is not None:
            client.close()
    # one row per handle, in input order, then anything else the file held
    order = [i.raw_handle if i.invalid else i.handle for i in items]
    rows = [done[h] for h in dict.fromkeys(order) if h in done]
    rows += [r for h, r in done.items() if h not in set(order)]
    write_registry(out, list(COLUMNS), rows)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return counts
