"""A run of `make year` executed in a process of its own, for the fault `worker_killed`.

    python -m bench.year_worker REQUEST.json

REQUEST.json: {"at": epoch seconds (the simulated now), "job": ..., "partition": ...,
"run_config": {...}, "tags": {...}}. The run is executed in process (as `observatoire run`
does, tagged with this process's pid) on the simulated clock, with the environment of the
harness; the harness kills this process in the middle of the run, as a crash or the OOM
killer would, and the observatory's own recovery has to notice.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    import time_machine

    request = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    with time_machine.travel(request["at"], tick=True):
        from dagster import DagsterInstance

        from dagster_project.definitions import defs
        from dagster_project.defs.automation import PID_TAG

        with DagsterInstance.get() as instance:
            result = defs.get_job_def(request["job"]).execute_in_process(
                run_config=request["run_config"], instance=instance,
                partition_key=request["partition"],
                tags={**request["tags"], PID_TAG: str(os.getpid())}, raise_on_error=False)
    return 0 if result.success else 1


if __name__ == "__main__":          # the site's process pool re-imports __main__ (spawn)
    sys.exit(main(sys.argv[1:]))
