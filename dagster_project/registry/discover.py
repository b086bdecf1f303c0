"""Classify Wikidata candidates against the registry: new, known, conflict or invalid.

Pure functions over `Binding`s (see `wikidata.py`), the registry's accounts and the set of
territory ids of every vintage. One output row per (handle, territory_id).
"""
from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from dagster_project.registry.accounts import Account, is_valid_handle, normalize_handle
from dagster_project.registry.wikidata import Binding

COLUMNS = ("handle", "territory_id", "territory_name", "status", "source_url", "detail")
KIND_LABELS = {"region": "région", "departement": "département", "commune": "commune",
               "epci": "EPCI (SIREN)"}


@dataclass(frozen=True)
class Candidate:
    handle: str
    territory_id: str
    territory_name: str
    status: str
    source_url: str
    detail: str

    def as_row(self) -> dict[str, str]:
        return {c: getattr(self, c) for c in COLUMNS}


def item_url(uri: str) -> str:
    """http://www.wikidata.org/entity/Q90 → https://www.wikidata.org/wiki/Q90"""
    qid = uri.rstrip("/").rsplit("/", 1)[-1]
    return f"https://www.wikidata.org/wiki/{qid}" if qid else uri


def has_ended(end: str, today: dt.date) -> bool:
    """An end time (xsd:dateTime, e.g. 2021-03-01T00:00:00Z) strictly before today."""
    if not end:
        return False
    try:
        when = dt.date.fromisoformat(end.strip()[:10])
    except ValueError:
        return False  # an unreadable end time is no proof the username ended
    return when < today


def classify(bindings: list[Binding], registry: list[Account], territory_ids: frozenset[str],
             names: dict[str, str], today: dt.date | None = None) -> list[Candidate]:
    today = today or dt.date.today()
    reg_by_handle = {a.handle: a.territory_id for a in registry}
    reg_by_territory = {a.territory_id: a.handle for a in registry}

    # collapse duplicate bindings: one entry per (handle, territory_id), first item URL kept
    pairs: dict[tuple[str, str], dict] = {}
    for b in sorted(bindings, key=lambda b: (b.kind, b.code, b.username, b.item)):
        if has_ended(b.end, today):
            continue
        handle = normalize_handle(b.username)
        territory_id = f"{b.kind}:{b.code}"
        entry = pairs.setdefault((handle, territory_id), {
            "binding": b, "raw": b.username, "items": set()})
        entry["items"].add(item_url(b.item))

    invalid: dict[tuple[str, str], str] = {}
    for (handle, territory_id), entry in pairs.items():
        b = entry["binding"]
        if not is_valid_handle(handle):
            invalid[(handle, territory_id)] = (
                f"username {entry['raw']!r} is not a valid Instagram handle after "
                "normalisation (1-30 characters among a-z 0-9 . _)")
        elif territory_id not in territory_ids:
            invalid[(handle, territory_id)] = (
                f"code {b.code!r} is not a {KIND_LABELS[b.kind]} of any vintage of the "
                "reference data")

    valid = [p for p in pairs if p not in invalid]
    territories_of: dict[str, set[str]] = defaultdict(set)
    handles_of: dict[str, set[str]] = defaultdict(set)
    for handle, territory_id in valid:
        territories_of[handle].add(territory_id)
        handles_of[territory_id].add(handle)

    out: list[Candidate] = []
    for (handle, territory_id), entry in pairs.items():
        url = min(entry["items"])
        name = names.get(territory_id, "")
        if (handle, territory_id) in invalid:
            out.append(Candidate(handle, territory_id, name, "invalid", url,
                                 invalid[(handle, territory_id)]))
            continue
        if reg_by_handle.get(handle) == territory_id:
            out.append(Candidate(handle, territory_id, name, "known", url,
                                 "already in the registry"))
            continue
        reasons = []
        if handle in reg_by_handle:
            reasons.append(f"the registry already gives @{handle} to {reg_by_handle[handle]}")
        if territory_id in reg_by_territory:
            reasons.append(f"the registry already gives {territory_id} the account "
                           f"@{reg_by_territory[territory_id]}")
        others = sorted(territories_of[handle] - {territory_id})
        if others:
            reasons.append(f"Wikidata also gives @{handle} to {', '.join(others)}")
        more = sorted(handles_of[territory_id] - {handle})
        if more:
            reasons.append(f"Wikidata also gives {territory_id} the handle(s) "
                           f"{', '.join('@' + h for h in more)}")
        if reasons:
            out.append(Candidate(handle, territory_id, name, "conflict", url,
                                 "; ".join(reasons) + ": review by hand"))
        else:
            out.append(Candidate(handle, territory_id, name, "new", url, ""))
    return sorted(out, key=lambda c: (c.territory_id, c.handle))


def write_candidates(path: Path, candidates: list[Candidate]) -> Path:
    from dagster_project.registry.accounts import write_registry

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_registry(path, list(COLUMNS), [c.as_row() for c in candidates])


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))
