"""The landing writer: the collection's finished accounts → landing files of their month."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from dagster_project.archive.landing import write_landing_file
from dagster_project.collect.graph_api.client import SOURCE

log = logging.getLogger(__name__)


class BatchWriter:
    """Atomic landing files `graph_api-<run stamp>-<seq>.ndjson.gz`, never overwriting
    (written and listed in the month's manifest by `landing.write_landing_file`)."""

    def __init__(self, landing_dir: Path, stamp: str, redact: Callable[[str], str],
                 secret: str):
        self._landing_dir = Path(landing_dir)
        self._stamp = stamp
        self._seq = 0
        self._redact = redact
        self._secret = secret
        self.files: list[Path] = []

    def write(self, records: list[dict]) -> None:
        by_month: dict[str, list[str]] = {}
        for rec in records:
            line = json.dumps(rec, ensure_ascii=False, separators=(",", ":"))
            if self._secret and self._secret in line:  # belt and braces
                line = line.replace(self._secret, "***")
            # a run straddling midnight at month end: each line goes to its fetched_at month
            by_month.setdefault(rec["fetched_at"][:7], []).append(line)
        for key, lines in sorted(by_month.items()):
            folder = self._landing_dir / key
            while True:
                self._seq += 1
                path = folder / f"{SOURCE}-{self._stamp}-{self._seq:04d}.ndjson.gz"
                if path.exists():
                    continue
                try:
                    write_landing_file(path, lines, recorded_by=SOURCE)
                except FileExistsError:
                    continue
                break
            self.files.append(path)
            log.info("landing file %s (%d accounts)", path.name, len(lines))
