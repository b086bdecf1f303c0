"""Start `dagster dev` on a free port in a throw-away data folder and drive it through the
Dagster UI's own GraphQL API (the calls the web UI makes). Shared by `test_dagster_ui.py`
and `measure_backfill.py`.

Background shells here start processes with SIGINT/SIGTERM *ignored*: the server is started
in a new session with the default handlers restored in the child, and stopped through its own
process group only (SIGINT, then SIGKILL after a timeout).
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]          # the repository
JOB = "monthly_pipeline"
REPOSITORY = "__repository__"
FINISHED_RUN = {"SUCCESS", "FAILURE", "CANCELED"}
FINISHED_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED",
                     "FAILING", "CANCELING"}


def venv_bin() -> Path:
    """The project environment's bin/ (the interpreter running us, else <repo>/.venv/bin)."""
    here = Path(sys.executable).parent
    return here if (here / "dagster").exists() else ROOT / ".venv" / "bin"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_with(marker: str) -> list[int]:
    """Live processes whose environment holds `marker` (a test's own DAGSTER_HOME=…)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in env.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def manifest_is_stale() -> bool:
    """No manifest, or a dbt file newer than it (the Makefile's rule)."""
    dbt = ROOT / "dbt_project"
    manifest = dbt / "target" / "manifest.json"
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    return any(p.stat().st_mtime > built for p in dbt.rglob("*")
               if p.suffix in (".sql", ".yml") and "target" not in p.relative_to(dbt).parts)


def ensure_manifest(env: dict | None = None) -> None:
    """dagster-dbt reads dbt_project/target/manifest.json at import time, and `dagster dev`
    no longer re-parses (dagster_project/defs/project.py): parse first, as `observatoire ui` does,
    but only when a dbt file changed (a parse costs 5-8 s)."""
    if manifest_is_stale():
        env = dict(env or os.environ) | {"DBT_SEND_ANONYMOUS_USAGE_STATS": "False"}
        subprocess.run([str(venv_bin() / "python"), "-m", "dagster_project.defs.dbt_manifest"],
                       cwd=ROOT, check=True, env=env)


def project_env(data_dir: Path) -> dict[str, str]:
    """The environment of `dagster dev` (and of every run it launches)."""
    sys.path.insert(0, str(ROOT))
    from dagster_project.defs.instance import ensure_instance

    data_dir = Path(data_dir)
    dagster_home = data_dir / "dagster"
    ensure_instance(dagster_home)
    env = dict(os.environ)
    for k in ("DAGSTER_IS_DEV_CLI", "OBSERVATOIRE_ACCOUNTS"):
        env.pop(k, None)
    env.update({
        "OBSERVATOIRE_DATA_DIR": str(data_dir),
        "DAGSTER_HOME": str(dagster_home),
        "OBSERVATOIRE_SOURCE": "demo",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "OBSERVATOIRE_SEEDS_DIR": str(ROOT / "seeds"),
    })
    # PATH is left as it is (venv not activated, as with `.venv/bin/observatoire ui`): the
    # project must find its own dbt.
    return env


# The child restores the default handlers, then becomes `dagster dev` (exec keeps the pid, so
# the process group we stop is exactly the server's).
_EXEC = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
         "signal.signal(signal.SIGTERM, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])")


@dataclass
class DagsterDev:
    data_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    location: str | None = None
    started_in: float = 0.0
    stopped: bool = False
    module: str = "dagster_project.definitions"
    extra_env: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, timeout: float = 90.0) -> DagsterDev:
        env = project_env(self.data_dir) | self.extra_env
        ensure_manifest(env)
        self.log_path = Path(self.data_dir) / "dagster-dev.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        dagster = str(venv_bin() / "dagster")
        cmd = [sys.executable, "-c", _EXEC, dagster, "dev", "-m", self.module,
               "-h", "127.0.0.1", "-p", str(self.port)]
        t0 = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self._wait_server_info(t0 + timeout)
        self.location = self._wait_location_loaded(t0 + timeout + 60)
        self.started_in = time.monotonic() - t0
        return self

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {self.proc.returncode}:\n{self.log_tail()}")

    def _wait_server_info(self, deadline: float) -> None:
        while True:
            self._check_alive()
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/server_info", timeout=2).ok:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"no /server_info on {self.url}:\n{self.log_tail()}")
            time.sleep(0.5)

    def _wait_location_loaded(self, deadline: float) -> str:
        """The code location's name, once it is loaded (the UI's workspace query)."""
        q = """query { workspaceOrError { __typename
              ... on Workspace { locationEntries { name loadStatus
                  locationOrLoadError { __typename
                    ... on RepositoryLocation { name repositories { name } }
                    ... on PythonError { message stack } } } }
              ... on PythonError { message } } }"""
        while True:
            self._check_alive()
            ws = self.gql(q)["workspaceOrError"]
            entries = ws.get("locationEntries", [])
            for e in entries:
                loc = e.get("locationOrLoadError") or {}
                if loc.get("__typename") == "PythonError":
                    raise RuntimeError(f"code location {e['name']} failed to load: "
                                       f"{loc['message']}\n{''.join(loc.get('stack') or [])}")
                if e["loadStatus"] == "LOADED" and loc.get("__typename") == "RepositoryLocation":
                    assert REPOSITORY in [r["name"] for r in loc["repositories"]]
                    return loc["name"]
            if time.monotonic() > deadline:
                raise TimeoutError(f"code location not loaded: {ws}\n{self.log_tail()}")
            time.sleep(1)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGINT to the server's own process group, SIGKILL to it after `timeout`."""
        if self.proc is None:
            return None
        if self.stopped:
            return self.proc.returncode
        pgid = self.proc.pid  # start_new_session: the leader's pid is the group id
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)
        # Children (webserver, daemon, code server, run workers) may outlive the leader.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, 0)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _group_alive(pgid):
                time.sleep(0.2)
            if _group_alive(pgid):
                os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self.stopped = True
        return self.proc.returncode

    def log_tail(self, n: int = 60) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    # -- GraphQL -------------------------------------------------------------------------
    def gql(self, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
        r = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                          timeout=timeout)
        r.raise_for_status()
        body = r.json()
        if body.get("errors"):
            raise AssertionError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def repository_selector(self) -> dict:
        return {"repositoryLocationName": self.location, "repositoryName": REPOSITORY}

    def launch_backfill(self, first: str, last: str, data_dir: Path | None = None,
                        title: str | None = None) -> str:
        """What the UI sends for "Materialize all → partitions first..last → Launch backfill"
        on the monthly_pipeline job, with the launchpad's YAML (resource config)."""
        keys = self.job_asset_keys()
        partitions = self.partition_keys_in_range(first, last)
        params = {
            "selector": {"partitionSetName": f"{JOB}_partition_set",
                         "repositorySelector": self.repository_selector()},
            "assetSelection": [{"path": k} for k in keys],
            "partitionNames": partitions,
            "fromFailure": False,
            "runConfigData": run_config_yaml(data_dir or self.data_dir),
            "tags": [],
        }
        if title:
            params["title"] = title
        res = self.gql(LAUNCH_BACKFILL, {"backfillParams": params})["launchPartitionBackfill"]
        if res["__typename"] != "LaunchBackfillSuccess":
            raise AssertionError(f"launchPartitionBackfill: {res}")
        return res["backfillId"]

    def launch_run(self, partition: str, data_dir: Path | None = None) -> str:
        """What the launchpad sends for one partition of monthly_pipeline."""
        params = {
            "selector": {**self.repository_selector(), "jobName": JOB},
            "runConfigData": run_config_yaml(data_dir or self.data_dir),
            "mode": "default",
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
        }
        res = self.gql(LAUNCH_RUN, {"executionParams": params})["launchRun"]
        if res["__typename"] != "LaunchRunSuccess":
            raise AssertionError(f"launchRun: {res}")
        return res["run"]["runId"]

    def job_asset_keys(self) -> list[list[str]]:
        q = """query($s: PipelineSelector!) { assetNodes(pipeline: $s) { assetKey { path } } }"""
        nodes = self.gql(q, {"s": {**self.repository_selector(), "pipelineName": JOB}})["assetNodes"]
        return [n["assetKey"]["path"] for n in nodes]

    def partition_keys_in_range(self, first: str, last: str) -> list[str]:
        """The job's partition keys from first to last (YYYY-MM or YYYY-MM-DD), inclusive."""
        q = """query($s: PipelineSelector!) { pipelineOrError(params: $s) { __typename
                 ... on Pipeline { partitionKeysOrError { partitionKeys } } } }"""
        job = self.gql(q, {"s": {**self.repository_selector(), "pipelineName": JOB}})["pipelineOrError"]
        keys = job["partitionKeysOrError"]["partitionKeys"]
        a, b = _day(first), _day(last)
        return [k for k in keys if a <= k <= b]

    def backfill(self, backfill_id: str) -> dict:
        return self.gql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]

    def runs(self, run_ids: list[str] | None = None, tags: list[dict] | None = None) -> list[dict]:
        flt: dict = {}
        if run_ids is not None:
            flt["runIds"] = run_ids
        if tags is not None:
            flt["tags"] = tags
        res = self.gql(RUNS, {"filter": flt})["runsOrError"]
        assert res["__typename"] == "Runs", res
        return res["results"]

    def wait_backfill(self, backfill_id: str, timeout: float = 600, poll: float = 2) -> tuple[dict, list[dict]]:
        """Poll until the backfill is finished and none of its runs is still going."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            bf = self.backfill(backfill_id)
            assert bf["__typename"] == "PartitionBackfill", bf
            runs = self.runs(tags=[{"key": "dagster/backfill", "value": backfill_id}])
            if bf["status"] in FINISHED_BACKFILL and all(r["status"] in FINISHED_RUN for r in runs):
                return bf, runs
            if time.monotonic() > deadline:
                raise TimeoutError(f"backfill {backfill_id} still {bf['status']}: "
                                   f"{[(r['runId'], r['status']) for r in runs]}")
            time.sleep(poll)

    def wait_runs(self, run_ids: list[str], timeout: float = 600, poll: float = 2) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            runs = self.runs(run_ids=run_ids)
            if len(runs) == len(run_ids) and all(r["status"] in FINISHED_RUN for r in runs):
                return runs
            if time.monotonic() > deadline:
                raise TimeoutError(f"runs still going: {[(r['runId'], r['status']) for r in runs]}")
            time.sleep(poll)

    def run_failure(self, run_id: str) -> str:
        """The run's error messages (for assertion messages)."""
        q = """query($id: ID!) { runOrError(runId: $id) { __typename ... on Run {
                 eventConnection(limit: 5000) { events { __typename
                   ... on MessageEvent { message stepKey }
                   ... on ExecutionStepFailureEvent { error { message causes { message } } }
                   ... on RunFailureEvent { error { message } } } } } } }"""
        run = self.gql(q, {"id": run_id})["runOrError"]
        out = []
        for ev in run.get("eventConnection", {}).get("events", []):
            if ev["__typename"] in ("ExecutionStepFailureEvent", "RunFailureEvent",
                                    "EngineEvent") and (ev.get("error") or {}).get("message"):
                causes = " / ".join(c["message"].strip()[-400:] for c in ev["error"].get("causes") or [])
                out.append(f"{ev.get('stepKey')}: {ev['error']['message'].strip()[-800:]} {causes}")
        return "\n".join(out) or "(no error event)"

    def ops_in_pool(self, pool: str) -> set[str]:
        """The job's ops (= step keys) whose definition is in `pool`."""
        q = """query($s: PipelineSelector!) { pipelineOrError(params: $s) { __typename
                 ... on Pipeline { solids { name definition { ... on SolidDefinition { pool } } } } } }"""
        job = self.gql(q, {"s": {**self.repository_selector(), "pipelineName": JOB}})["pipelineOrError"]
        return {s["name"] for s in job["solids"] if s["definition"].get("pool") == pool}

    def step_stats(self, run_id: str) -> list[dict]:
        q = """query($id: ID!) { runOrError(runId: $id) { __typename ... on Run {
                 stepStats { stepKey status startTime endTime } } } }"""
        return self.gql(q, {"id": run_id})["runOrError"]["stepStats"]

    def check_names(self, asset_key: list[str]) -> list[str]:
        q = """query($k: [AssetKeyInput!]) { assetNodes(assetKeys: $k) {
                 assetChecksOrError { __typename ... on AssetChecks { checks { name } } } } }"""
        nodes = self.gql(q, {"k": [{"path": asset_key}]})["assetNodes"]
        assert len(nodes) == 1, nodes
        return sorted(c["name"] for c in nodes[0]["assetChecksOrError"]["checks"])

    def check_executions(self, asset_key: list[str], check: str, limit: int = 20) -> list[dict]:
        q = """query($k: AssetKeyInput!, $c: String!, $n: Int!) {
                 assetCheckExecutions(assetKey: $k, checkName: $c, limit: $n) {
                   runId status partition evaluation { success severity } } }"""
        return self.gql(q, {"k": {"path": asset_key}, "c": check, "n": limit})["assetCheckExecutions"]


def _day(month: str) -> str:
    return month if len(month) == 10 else f"{month}-01"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # A group of zombies only (reaped later) counts as gone.
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def run_config_yaml(data_dir: Path) -> str:
    """The launchpad's YAML: resource config under resources.observatoire.config."""
    return yaml.safe_dump({"resources": {"observatoire": {"config": {
        "data_dir": str(data_dir), "source": "demo"}}}}, sort_keys=False)


LAUNCH_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId launchedRunIds }
    ... on PartitionSetNotFoundError { message }
    ... on PartitionKeysNotFoundError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PipelineNotFoundError { message }
    ... on UnauthorizedError { message }
    ... on InvalidSubsetError { message }
    ... on PythonError { message stack }
  }
}"""

LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
    ... on PythonError { message stack }
  }
}"""

BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { id status numPartitions partitionNames isAssetBackfill
                               timestamp endTimestamp error { message } }
    ... on BackfillNotFoundError { message }
    ... on PythonError { message }
  }
}"""

RUNS = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId jobName status creationTime startTime endTime
                            tags { key value } runConfigYaml } }
    ... on InvalidPipelineRunsFilterError { message }
    ... on PythonError { message }
  }
}"""
