"""`make year`: a year of unattended operation, simulated in minutes.

The observatory's own schedules, sensors and jobs (the definitions `observatoire serve`
loads) are evaluated over a simulated calendar on a fresh data folder: at each tick the
harness does what the daemon does (evaluates the schedules and sensors that are due,
executes the runs they request, in order, with the real jobs), then jumps the clock to the
next tick. Python's clock is moved by time-machine, so the collector, the watch, the Graph
API stand-in (in this process) and dbt (given the month by the dbt asset) all live on the
same simulated date. Nothing sleeps: runs take the (real) seconds they take, a few seconds
of simulated time.

    .venv/bin/python -m bench.year [--from 2027-01 --months 12] [--faults FILE] [--keep DIR]

Faults (bench/year_faults.py) are injected from a plan (bench/year_faults.json by default).
What the daemon and serve add around the definitions is done here too: serve's sweep of runs
whose process is gone, and the run retries of dagster.yaml (Dagster's own rule decides).
Prints a table per month and the faults, writes bench/out/year.json; exits 1 when a month is
neither published by the 2nd at 12:00 (Paris) nor alerted, a fault is not alerted exactly
once, an alert has no fault behind it, an alert is left undelivered, a landing line is
neither loaded nor rejected, or runs are left in progress.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))   # the Graph API and webhook stand-ins

PARIS = ZoneInfo("Europe/Paris")
TICK = dt.timedelta(minutes=30)       # the crons run at :00 and :30 (Paris), on these ticks
SENSOR_EVERY = dt.timedelta(hours=1)  # sensors: once a simulated hour (the daemon: 1–5 min)
DEADLINE = (2, 12)                    # a month is published by the 2nd at 12:00 (Paris)
INSTALLED_ON_DAY = 20                 # the observatory runs from the 20th of the month before
RUN_ONLY_TAGS = {"observatoire/pid", "observatoire/year_kill"}   # not carried to a retry
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
OUT = ROOT / "bench" / "out" / "year.json"


@dataclass
class Launch:
    at: str                   # simulated time (Paris)
    origin: str               # schedule:<name> | sensor:<name>
    job: str
    partition: str | None
    run_key: str | None
    status: str = ""
    seconds: float = 0.0      # real seconds


@dataclass
class MonthReport:
    month: str
    accounts_collected: int = 0
    published_at: str | None = None
    on_time: bool = False
    provisional_builds: int = 0
    retries: int = 0          # runs the daemon's run retries relaunched (a crash)
    alerts: dict[str, int] = field(default_factory=dict)


def environment(folder: Path, api, receiver, registry: Path) -> dict[str, str]:
    return {
        "OBSERVATOIRE_SEEDS_DIR": str(folder / "seeds"),   # the reference data dbt reads
        "OBSERVATOIRE_DATA_DIR": str(folder / "data"),
        "DAGSTER_HOME": str(folder / "data" / "dagster"),
        "OBSERVATOIRE_ACCOUNTS": str(registry),
        "OBSERVATOIRE_AUTOMATION": "on",
        "OBSERVATOIRE_BACKUP_DIR": str(folder / "backup"),
        "OBSERVATOIRE_ALERT_WEBHOOK_URL": receiver.url,
        "INSTAGRAM_GRAPH_URL": api.url,
        "INSTAGRAM_ACCESS_TOKEN": api.token,
        "INSTAGRAM_USER_ID": api.user_id,
        # Meta's hourly pace is real time: the stand-in has no budget, nothing to wait for
        "OBSERVATOIRE_GRAPH_CALLS_PER_HOUR": "1000000",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }


class World:
    """The stand-in's accounts, refreshed to the simulated day before each tick."""

    def __init__(self, api, handles: list[str]):
        from bench import year_world

        self.w, self.api, self.handles, self.day = year_world, api, handles, None
        for handle in handles:
            api.add_account(handle)

    def refresh(self, now: dt.datetime, api_down: bool = False) -> None:
        day = now.astimezone(dt.UTC).date()
        if day != self.day:
            self.day = day
            for handle in self.handles:
                followers, follows, media = self.w.figures(handle, day, now)
                if self.w.hides_likes(handle, self.handles):
                    media = [{k: v for k, v in m.items() if k != "like_count"} for m in media]
                account = self.api.accounts[handle]
                account.followers, account.follows, account.media = followers, follows, media
        for handle in self.handles:
            self.api.clear_scenario(handle)
            if self.w.gone(handle, self.handles, day):
                self.api.scenario(handle, not_found=True)
            if api_down:
                self.api.scenario(handle, permanent_5xx=True)


class Daemon:
    """What the Dagster daemon does, in this process: due schedule ticks, sensor ticks, and
    the runs they request executed one after the other (a run key runs once)."""

    def __init__(self, defs, instance, start: dt.datetime, injector):
        self.repo = defs.get_repository_def()
        self.instance = instance
        self.injector = injector
        self.cursors: dict[str, str | None] = {}
        self.run_keys: set[tuple[str, str]] = set()
        self.last_schedule_tick = start
        self.last_sensor_tick: dt.datetime | None = None
        self.launches: list[Launch] = []
        self.failures_seen: set[str] = set()

    def due(self, schedule, since: dt.datetime, until: dt.datetime) -> list[dt.datetime]:
        """The schedule's ticks in (since, until], as the daemon computes them: its own
        iterator, whose daylight-saving rules differ from cron libraries' (a 02:00 that does
        not exist runs at 03:00; croniter skips that day)."""
        from dagster._utils.schedules import cron_string_iterator

        ticks = []
        for tick in cron_string_iterator(since.timestamp(), schedule.cron_schedule,
                                         schedule.execution_timezone or "UTC"):
            if tick > until:
                return ticks
            if tick > since:
                ticks.append(tick)
        return ticks

    def tick(self, now: dt.datetime) -> None:
        from dagster import build_schedule_context, build_sensor_context

        requests = []
        for schedule in self.repo.schedule_defs:
            for at in self.due(schedule, self.last_schedule_tick, now):
                ctx = build_schedule_context(instance=self.instance, scheduled_execution_time=at,
                                             repository_def=self.repo)
                data = schedule.evaluate_tick(ctx)
                requests += [(f"schedule:{schedule.name}", schedule.job_name, r)
                             for r in data.run_requests or []]
        self.last_schedule_tick = now
        if self.last_sensor_tick is None or now - self.last_sensor_tick >= SENSOR_EVERY:
            self.last_sensor_tick = now
            recover(lambda line: print(f"  serve: {line}", flush=True))   # serve's sweep
            for sensor in self.repo.sensor_defs:
                ctx = build_sensor_context(instance=self.instance, repository_def=self.repo,
                                           cursor=self.cursors.get(sensor.name))
                data = sensor.evaluate_tick(ctx)
                self.cursors[sensor.name] = data.cursor
                job = sensor.job_name if sensor.has_jobs else None
                requests += [(f"sensor:{sensor.name}", r.job_name or job, r)
                             for r in data.run_requests or []]
        for origin, job_name, request in requests:
            key = (origin, request.run_key)
            if request.run_key and key in self.run_keys:
                continue
            self.run_keys.add(key)
            self.launch(now, origin, job_name, request)
        self.retry_failed(now)

    def retry_failed(self, now: dt.datetime) -> None:
        """The daemon's run retries (dagster.yaml `run_retries`): a failed run that Dagster's
        own rule says to retry (a crash, not a failed step; within max_retries) is executed
        again, tagged as the daemon tags its retries."""
        from dagster import DagsterRunStatus, RunRequest, RunsFilter
        from dagster._daemon.auto_run_reexecution.auto_run_reexecution import should_retry

        for run in self.instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.FAILURE])):
            if run.run_id in self.failures_seen:
                continue
            self.failures_seen.add(run.run_id)
            if not should_retry(run, self.instance):
                continue
            group = self.instance.get_run_group(run.run_id)
            tags = {k: v for k, v in run.tags.items()
                    if not k.startswith("dagster/") and k not in RUN_ONLY_TAGS}
            tags.update({"dagster/parent_run_id": run.run_id,
                         "dagster/root_run_id": run.root_run_id or run.run_id,
                         "dagster/retry_number": str(len(group[1]) if group else 1)})
            request = RunRequest(partition_key=run.tags.get("dagster/partition"),
                                 run_config=run.run_config, tags=tags)
            self.launch(now, f"retry:{run.run_id[:8]}", run.job_name, request)

    def launch(self, now: dt.datetime, origin: str, job_name: str, request) -> None:
        launch = Launch(now.astimezone(PARIS).isoformat(timespec="minutes"), origin, job_name,
                        request.partition_key, request.run_key)
        started = time.monotonic()
        run_config = {**(request.run_config or {}), **QUIET}
        tags = {**request.tags, "observatoire/year_origin": origin}
        if self.injector.claim_kill(job_name):
            launch.status = kill_mid_build(self.instance, now, job_name, request.partition_key,
                                           run_config, tags)
        else:
            result = self.repo.get_job(job_name).execute_in_process(
                run_config=run_config, instance=self.instance,
                partition_key=request.partition_key, tags=tags, raise_on_error=False)
            launch.status = "success" if result.success else "failure"
        launch.seconds = round(time.monotonic() - started, 1)
        self.launches.append(launch)
        print(f"  {launch.at}  {origin:<32} {job_name:<22} {request.partition_key or '':<10} "
              f"{launch.status} ({launch.seconds} s)", flush=True)


def recover(say) -> None:
    """serve's sweep: the runs whose process is gone are marked failed."""
    from dagster_project.service.serve import recover as sweep

    sweep(say)


def kill_mid_build(instance, now: dt.datetime, job_name: str, partition: str | None,
                   run_config: dict, tags: dict, timeout_s: float = 600) -> str:
    """Run the job in a process of its own (bench/year_worker.py) and kill it (SIGKILL, its
    whole process group: dbt included) once its dbt step has started; the run is left
    "started", as a crash leaves it. Returns the launch's status."""
    import signal
    import subprocess
    import uuid

    from dagster import DagsterEventType, RunsFilter

    mark = uuid.uuid4().hex
    folder = Path(tempfile.mkdtemp(prefix="year-worker-"))
    request = folder / "request.json"
    request.write_text(json.dumps({"at": now.timestamp(), "job": job_name,
                                   "partition": partition, "run_config": run_config,
                                   "tags": {**tags, "observatoire/year_kill": mark}}))
    with open(folder / "worker.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "bench.year_worker", str(request)],
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + timeout_s
    status = "ended before it could be killed"
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            runs = instance.get_runs(RunsFilter(tags={"observatoire/year_kill": mark}))
            steps = [r.event_log_entry.dagster_event.step_key for r in
                     instance.get_records_for_run(runs[0].run_id,
                                                  of_type=DagsterEventType.STEP_START).records
                     ] if runs else []
            if any("dbt" in (step or "") for step in steps):
                time.sleep(1.0)                      # into the build
                os.killpg(proc.pid, signal.SIGKILL)
                status = "killed"
                break
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        shutil.rmtree(folder, ignore_errors=True)
    return status


def next_tick(moment: dt.datetime) -> dt.datetime:
    """The first tick (a multiple of TICK since the epoch) at or after `moment`."""
    step = TICK.total_seconds()
    return dt.datetime.fromtimestamp(-(-moment.timestamp() // step) * step, dt.UTC)


@contextlib.contextmanager
def simulated_waits(clock, scale: float = 0.001):
    """The collector's waits (retries, throttling holds, pacing) on the simulated clock: they
    move it by the seconds planned and last a thousandth of them in real time (its deadlines
    are measured on time.monotonic(), which time-machine does not move, and scaled alike)."""
    from dagster_project.collect import graph_api

    real = graph_api.CollectorOptions

    def sleep(seconds: float) -> None:
        clock.shift(seconds / scale)

    graph_api.CollectorOptions = functools.partial(real, sleep=sleep, backoff_scale=scale)
    try:
        yield
    finally:
        graph_api.CollectorOptions = real


def final_months(published: Path) -> set[str]:
    """The months the published copy holds final (the watch's own reading), none while
    it cannot be read."""
    from dagster_project.defs.automation import published_months

    try:
        return published_months(published)
    except Exception:  # noqa: BLE001 — being replaced: read again after the next run
        return set()


def simulate(folder: Path, first: dt.date, months: int, plan: Path | None) -> dict:
    """Run the calendar from `first` (a month) for `months` months, plus the days the last
    one needs to be published; returns the report."""
    import time_machine
    from fake_graph_api import FakeGraphAPI
    from webhook_receiver import WebhookReceiver

    from bench import year_faults, year_world
    from dagster_project import months as m

    shutil.copytree(ROOT / "seeds", folder / "seeds")   # the operator's copy (a fault edits it)
    registry = folder / "accounts.csv"
    accounts = year_world.registry()
    registry.write_text("handle,territory_id\n" + "".join(f"{h},{t}\n" for h, t in accounts),
                        encoding="utf-8")
    # installed before the calendar: the month before is collected in its window and
    # published on the 1st, as on a server that has been running for a while
    start = dt.datetime.combine(m.add_months(first, -1).replace(day=INSTALLED_ON_DAY),
                                dt.time(0, 0), PARIS)
    end_month = dt.date(first.year + (first.month - 1 + months) // 12,
                        (first.month - 1 + months) % 12 + 1, 1)
    end = dt.datetime.combine(end_month.replace(day=DEADLINE[0]), dt.time(DEADLINE[1], 30),
                              PARIS)
    api, receiver = FakeGraphAPI(), WebhookReceiver()
    api.start()
    faults = year_faults.load_plan(plan, start, end) if plan else []
    injector = year_faults.Injector(faults, api, receiver, folder / "data",
                                    folder / "backup", folder / "seeds")
    alerts: list[tuple[str, dict]] = []
    wall = time.monotonic()
    try:
        os.environ.update(environment(folder, api, receiver, registry))
        with time_machine.travel(start, tick=True) as clock, simulated_waits(clock):
            from dagster import DagsterInstance

            from dagster_project.definitions import defs
            from dagster_project.defs.instance import ensure_instance
            from dagster_project.settings import load_settings

            settings = load_settings()
            ensure_instance(settings.dagster_home)
            instance = DagsterInstance.get()
            world = World(api, [h for h, _ in accounts])
            daemon = Daemon(defs, instance, start, injector)
            published: dict[str, str] = {}
            written: dict[str, int] = {}
            now = start.astimezone(dt.UTC)   # in UTC: Paris steps would enter a skipped hour
            while now <= end:
                clock.move_to(now)
                injector.apply(now)
                world.refresh(now, injector.api_down)
                seen, launched = len(receiver.accepted), len(daemon.launches)
                daemon.tick(now)
                at = now.astimezone(PARIS).isoformat(timespec="minutes")
                alerts += [(at, body) for body in receiver.accepted[seen:]]
                if len(daemon.launches) > launched:
                    note_written(settings.landing_dir, written)
                    for month in final_months(settings.published_warehouse):
                        published.setdefault(month, at)
                # a run's waits move the clock (simulated_waits): never step back in time
                now = max(now + TICK, next_tick(dt.datetime.now(dt.UTC)))
            in_progress = [r.run_id for r in instance.get_runs()
                           if r.status.value in ("STARTED", "STARTING", "CANCELING", "QUEUED")]
            report = build_report(first, months, settings, daemon.launches, published, alerts)
            report["runs_in_progress"] = in_progress
            report.update(year_faults.account(faults, alerts))
            report["undelivered"] = undelivered(settings.data_dir)
            report["lines"] = lines_accounting(settings.warehouse, written)
    finally:
        injector.close()
        api.stop()
        receiver.close()
    report["wall_seconds"] = round(time.monotonic() - wall, 1)
    report["time"] = where_time_goes(report["launches"], report["wall_seconds"])
    return report


def note_written(landing_dir: Path, written: dict[str, int]) -> None:
    """Add every landing file the manifests list now, with its lines, to `written` (kept
    across the year: a folder restored from an older copy does not make lines disappear
    from the count)."""
    from dagster_project.archive import landing
    from dagster_project.archive.verify import archive_months

    for month in archive_months(landing_dir):
        for name, entry in landing.read_manifest(Path(landing_dir) / month).items():
            key = f"{month}/{name}"
            written[key] = max(written.get(key, 0), entry.lines or 0)


def lines_accounting(warehouse: Path, written: dict[str, int]) -> dict:
    """Landing lines written (the manifests, over the year) against the lines the warehouse
    loaded or rejected, file by file: a line neither loaded nor rejected is lost."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("select file, sum(loaded)::bigint, sum(rejected)::bigint "
                           "from raw.load_files group by file").fetchall()
    done = {file: (loaded or 0, rejected or 0) for file, loaded, rejected in rows}
    lost = {file: n - sum(done.get(file, (0, 0))) for file, n in written.items()
            if n > sum(done.get(file, (0, 0)))}
    return {"written": sum(written.values()),
            "loaded": sum(v[0] for v in done.values()),
            "rejected": sum(v[1] for v in done.values()),
            "lost": sum(lost.values()), "lost_by_file": lost}


def undelivered(data_dir: Path) -> list[str]:
    """The alerts recorded but never delivered to the webhook (lost)."""
    from dagster_project.service.alerts import recent

    return [a["key"] for a in recent(data_dir, limit=10_000)
            if a["channels"].get("webhook", {}).get("state") != "sent"]


def alert_month(at: str) -> str:
    """The month an alert (Paris time "YYYY-MM-DDTHH:MM…") is counted in: its own, but on the
    1st and 2nd (until the publication deadline) the month being published."""
    day = dt.date.fromisoformat(at[:10])
    if day.day <= DEADLINE[0]:
        day = day.replace(day=1) - dt.timedelta(days=1)
    return day.strftime("%Y-%m")


def build_report(first: dt.date, months: int, settings, launches: list[Launch],
                 published: dict[str, str], alerts: list[tuple[str, dict]]) -> dict:
    import duckdb

    from dagster_project import months as m

    rows = []
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        for i in range(months):
            month = m.add_months(first, i)
            key = month.strftime("%Y-%m")
            r = MonthReport(key)
            r.accounts_collected = con.execute(
                "select count(distinct handle) from raw.snapshots where month = ? and status = 'ok'",
                [month]).fetchone()[0]
            r.published_at = published.get(key)
            deadline = dt.datetime.combine(m.add_months(month, 1).replace(day=DEADLINE[0]),
                                           dt.time(DEADLINE[1]), PARIS)
            r.on_time = bool(r.published_at) and dt.datetime.fromisoformat(
                r.published_at) <= deadline
            r.provisional_builds = sum(1 for x in launches if x.origin.startswith("sensor:")
                                       and x.partition == month.isoformat()
                                       and x.status == "success")
            r.retries = sum(1 for x in launches if x.origin.startswith("retry:")
                            and x.partition == month.isoformat())
            for at, body in alerts:   # those of the 1st and 2nd are the month before's
                if alert_month(at) == key:
                    kind = str(body.get("event") or body.get("text", ""))[:40]
                    r.alerts[kind] = r.alerts.get(kind, 0) + 1
            rows.append(asdict(r))
    return {"from": first.strftime("%Y-%m"), "months": rows,
            "launches": [asdict(x) for x in launches],
            "alerts": [{"at": at, **body} for at, body in alerts],
            "runs": len(launches), "failed_runs": sum(x.status != "success" for x in launches)}


def where_time_goes(launches: list[dict], wall: float) -> dict[str, dict]:
    """Real seconds by job (runs, seconds), and the rest: the ticks themselves (schedules
    and sensors evaluated, the watch, serve's sweep), the stand-ins, start and report."""
    out: dict[str, dict] = {}
    for x in launches:
        job = out.setdefault(x["job"], {"runs": 0, "seconds": 0.0})
        job["runs"] += 1
        job["seconds"] = round(job["seconds"] + x["seconds"], 1)
    out["ticks and the rest"] = {"runs": 0, "seconds": round(
        wall - sum(v["seconds"] for v in out.values()), 1)}
    return out


def print_report(report: dict) -> None:
    print(f"\n{'month':<8} {'accounts':>8} {'published (Paris)':<18} {'on time':<8} "
          f"{'provisional':>11} {'retries':>7}  alerts")
    for r in report["months"]:
        alerts = ", ".join(f"{k} ×{n}" for k, n in r["alerts"].items()) or "—"
        print(f"{r['month']:<8} {r['accounts_collected']:>8} {r['published_at'] or '—':<18} "
              f"{'yes' if r['on_time'] else 'NO':<8} {r['provisional_builds']:>11} "
              f"{r['retries']:>7}  {alerts}")
    if report["faults"]:
        print(f"\n{'fault':<36} {'expected':<16} alerts")
        for f in report["faults"]:
            got = ", ".join(f"{a['event']} {a['at']}" for a in f["alerts"]) or "—"
            print(f"{f['fault']:<36} {f['expected'] or 'none':<16} {got}"
                  f"{'' if f['ok'] else '   FAIL'}{'   (' + f['note'] + ')' if f['note'] else ''}")
    print(f"\nfaults alerted exactly once {report['faults_alerted_once']} of "
          f"{report['faults_expecting_an_alert']}, duplicates {report['duplicates']}, "
          f"false alarms {len(report['false_alarms'])}, undelivered {len(report['undelivered'])}")
    lines = report["lines"]
    print(f"landing lines written {lines['written']}, loaded {lines['loaded']}, rejected "
          f"{lines['rejected']}, lost {lines['lost']}")
    print(f"runs {report['runs']} ({report['failed_runs']} failed), in progress at the end "
          f"{len(report['runs_in_progress'])}, wall time {report['wall_seconds']} s: "
          + ", ".join(f"{job} {v['seconds']} s" + (f" ({v['runs']} runs)" if v["runs"] else "")
                      for job, v in report["time"].items()))


def verdict(report: dict) -> list[str]:
    problems = [f"{r['month']}: not published by the {DEADLINE[0]}nd at {DEADLINE[1]}:00 "
                "(Paris) and no alert" for r in report["months"]
                if not r["on_time"] and not r["alerts"]]
    if report["runs_in_progress"]:
        problems.append(f"runs left in progress: {report['runs_in_progress']}")
    problems += [f"fault {f['fault']}: expected {f['expected'] or 'no alert'}, got "
                 f"{len(f['alerts'])}" for f in report["faults"] if not f["ok"]]
    problems += [f"false alarm {a['at']} {a['event']}: {a['text']}"
                 for a in report["false_alarms"]]
    problems += [f"alert never delivered: {key}" for key in report["undelivered"]]
    problems += [f"{n} landing line(s) of {file} neither loaded nor rejected"
                 for file, n in report["lines"]["lost_by_file"].items()]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.year", description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="first", default="2027-01", help="first month, YYYY-MM")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--faults", type=Path, default=None,
                        help="fault plan (JSON; default bench/year_faults.json)")
    parser.add_argument("--no-faults", action="store_true", help="the calendar alone")
    parser.add_argument("--keep", type=Path, help="keep the data folder here")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    first = dt.date.fromisoformat(args.first + "-01")
    folder = Path(tempfile.mkdtemp(prefix="observatoire-year-"))
    try:
        from bench.year_faults import DEFAULT_PLAN

        plan = None if args.no_faults else (args.faults or DEFAULT_PLAN)
        report = simulate(folder, first, args.months, plan)
    finally:
        if args.keep:
            shutil.rmtree(args.keep, ignore_errors=True)
            shutil.copytree(folder, args.keep, symlinks=True)
        shutil.rmtree(folder, ignore_errors=True)
    print_report(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    problems = verdict(report)
    for p in problems:
        print(f"FAIL: {p}")
    return 1 if problems else 0


if __name__ == "__main__":          # the site's process pool re-imports __main__ (spawn)
    sys.exit(main())
