"""dbt's manifest is replaced whole: a run whose process loads the definitions (dagster-dbt
reads target/manifest.json then) while `observatoire ui` or `serve` parses the project reads
the old manifest or the new one, never a half-written one."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from dagster_project.settings import DBT_PROJECT_DIR


def _parse() -> None:
    # its own process, as `make setup` runs it: dbt's runner changes the environment
    subprocess.run([sys.executable, "-m", "dagster_project.defs.dbt_manifest"], check=True,
                   timeout=300, stdout=subprocess.DEVNULL)


def test_a_parse_renames_a_new_manifest_over_the_old_one():
    path = DBT_PROJECT_DIR / "target" / "manifest.json"
    _parse()
    with open(path, "rb") as reader:     # a run's process reading the manifest meanwhile
        before = os.fstat(reader.fileno())
        _parse()
        seen = reader.read()
    assert os.stat(path).st_ino != before.st_ino, "manifest.json was rewritten in place"
    assert len(seen) == before.st_size
    assert json.loads(seen)["metadata"]["dbt_schema_version"]
    assert json.loads(path.read_bytes())["nodes"]
    assert (DBT_PROJECT_DIR / "target" / "partial_parse.msgpack").stat().st_size > 0
