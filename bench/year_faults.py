"""The faults `make year` injects, and their accounting.

A fault plan is a JSON list of `{"at": "2027-03-05T09:00", "kind": ..., ...}` (Paris time),
each kind with the alert it must produce (or none):

| kind | parameters | what happens | alert expected |
|---|---|---|---|
| token_expiring | days | debug_token says the token expires in `days` days | token_expiring |
| token_revoked | | the token stops being valid (code 190 everywhere) | token_invalid |
| token_renewed | | a new valid token, given to the observatory as the operator would | none |
| receiver_down | hours | the chat webhook answers 503 for `hours` hours | none (the alerts it missed arrive after) |
| api_down | hours | the Graph API answers 503 for `hours` hours | collection_failing (on a collection night) |
| throttled_night | hours | every Graph call answered code 4, usage 100 %, for `hours` hours | none (the collection holds, then goes on) |
| worker_killed | | the next build_from_landing runs in a process of its own, killed (SIGKILL) once its dbt step has started | run_failed (serve's sweep finds the dead run) |
| landing_restored | hours | the month's first landing file is lost, and put back `hours` later from the nightly backup with its original time (`cp -p`) | verify_failed (the nightly verify in between) |
| blocking_test_fails | hours | a line of the reference scoring weights (the operator's copy, OBSERVATOIRE_SEEDS_DIR) gets a negative weight, fixed `hours` later: a blocking dbt test of the reference data fails | data_test_failed (the build in between, naming the test) |
| disk_readonly | hours | the published folder (data/published) read-only for `hours` hours | run_failed (the build that cannot publish) |

An alert matches a fault when it has the fault's expected event and arrives within
MATCH_WITHIN of the fault's start; a fault is alerted exactly once or it fails the year; an
alert that matches no fault is a false alarm.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
EXPECTED = {"token_expiring": "token_expiring", "token_revoked": "token_invalid",
            "token_renewed": None, "receiver_down": None, "api_down": "collection_failing",
            "throttled_night": None, "worker_killed": "run_failed", "disk_readonly": "run_failed",
            "landing_restored": "verify_failed", "blocking_test_fails": "data_test_failed"}
BAD_WEIGHT = ("\nfollower_ratio,1,", "\nfollower_ratio,-1,")   # a typo the tests must stop
KILLED_JOB = "build_from_landing"     # the job worker_killed kills a run of
MATCH_WITHIN = dt.timedelta(days=2)
DEFAULT_PLAN = Path(__file__).with_name("year_faults.json")


@dataclass
class Fault:
    at: dt.datetime
    kind: str
    hours: float = 0.0
    days: int = 0
    started: bool = False
    ended: bool = False
    note: str = ""            # what the harness did (or why it could not)

    @property
    def expected(self) -> str | None:
        return EXPECTED[self.kind]

    @property
    def until(self) -> dt.datetime:
        return self.at + dt.timedelta(hours=self.hours)

    def describe(self) -> str:
        extra = f" {self.hours:g} h" if self.hours else f" {self.days} d" if self.days else ""
        return f"{self.at.isoformat(timespec='minutes')} {self.kind}{extra}"


def load_plan(path: Path, first: dt.datetime, last: dt.datetime) -> list[Fault]:
    """The plan's faults that fall in [first, last], in time order; an unknown kind or a
    malformed entry is a clear error."""
    faults = []
    for i, entry in enumerate(json.loads(path.read_text(encoding="utf-8"))):
        kind = entry.get("kind")
        if kind not in EXPECTED:
            raise ValueError(f"{path}: fault {i}: unknown kind {kind!r} "
                             f"(known: {', '.join(sorted(EXPECTED))})")
        at = dt.datetime.fromisoformat(entry["at"]).replace(tzinfo=PARIS)
        fault = Fault(at, kind, float(entry.get("hours", 0)), int(entry.get("days", 0)))
        if first <= at <= last:
            faults.append(fault)
    return sorted(faults, key=lambda f: f.at)


class Injector:
    """Starts and ends each fault when the simulated clock reaches it."""

    def __init__(self, faults: list[Fault], api, receiver, data_dir: Path, backup_dir: Path,
                 seeds_dir: Path):
        self.faults, self.api, self.receiver = faults, api, receiver
        self.data_dir, self.backup_dir, self.seeds_dir = data_dir, backup_dir, seeds_dir
        self.renewals = 0
        self.api_down = False
        self.kill: Fault | None = None            # worker_killed waiting for its run
        self.undo: dict[int, object] = {}         # id(fault) → how to end it

    def apply(self, now: dt.datetime) -> None:
        for f in self.faults:
            if not f.started and now >= f.at:
                f.started = True
                self.start(f, now)
            if f.started and not f.ended and f.hours and now >= f.until:
                f.ended = True
                self.end(f)

    def start(self, f: Fault, now: dt.datetime) -> None:
        print(f"  {now.astimezone(PARIS).isoformat(timespec='minutes')}  FAULT {f.kind}",
              flush=True)
        if f.kind == "token_expiring":
            self.api.token_expires_at = int((now + dt.timedelta(days=f.days)).timestamp())
        elif f.kind == "token_revoked":
            self.api.token = f"EAArevoked-{self.api.token}"     # the one in use is refused
        elif f.kind == "token_renewed":
            self.renewals += 1
            self.api.token = f"EAArenewed{self.renewals}-0123456789abcdef"
            self.api.token_expires_at = 0
            os.environ["INSTAGRAM_ACCESS_TOKEN"] = self.api.token   # the operator's edit
        elif f.kind == "receiver_down":
            self.receiver.down = True
        elif f.kind == "api_down":
            self.api_down = True
        elif f.kind == "throttled_night":
            self.api.regain_minutes = 60
            self.api.throttled_until = f.until.timestamp()
        elif f.kind == "worker_killed":
            self.kill = f
        elif f.kind == "landing_restored":
            from dagster_project.archive.landing import iter_month_files

            month = now.astimezone(PARIS).strftime("%Y-%m")
            files = iter_month_files(self.data_dir / "landing" / "instagram" / month)
            if not files:
                f.note = (f"nothing landed for {month} at that time: put the fault after the "
                          "month's first collection night")
                return
            files[0].unlink()
            f.note = f"lost {month}/{files[0].name}"
            self.undo[id(f)] = lambda: self.restore(f, month, files[0])
        elif f.kind == "blocking_test_fails":
            weights = self.seeds_dir / "scoring_weights.csv"
            text = weights.read_text(encoding="utf-8")
            if BAD_WEIGHT[0] not in text:
                f.note = f"{weights} has no line {BAD_WEIGHT[0].strip()!r}: not injected"
                return
            weights.write_text(text.replace(BAD_WEIGHT[0], BAD_WEIGHT[1]), encoding="utf-8")
            self.undo[id(f)] = lambda: weights.write_text(text, encoding="utf-8")
        elif f.kind == "disk_readonly":
            try:
                (self.data_dir / "published").mkdir(parents=True, exist_ok=True)
                self.undo[id(f)] = read_only(self.data_dir / "published")
            except OSError as exc:
                f.note = f"not injected: {exc}"
                print(f"  cannot make the folder read-only here: {exc}", flush=True)

    def end(self, f: Fault) -> None:
        if f.kind == "receiver_down":
            self.receiver.down = False
        elif f.kind == "api_down":
            self.api_down = False
        elif f.kind == "throttled_night":
            self.api.regain_minutes = 0
        elif id(f) in self.undo:      # disk_readonly, landing_restored, blocking_test_fails
            self.undo.pop(id(f))()

    def restore(self, f: Fault, month: str, path: Path) -> None:
        """The operator's `cp -p` of the lost file from the backup."""
        copy = self.backup_dir / "landing" / "instagram" / month / path.name
        if not copy.exists():
            f.note += "; not in the backup: not restored"
            return
        shutil.copy2(copy, path)
        f.note += ", restored from the backup"
        print(f"  restored {month}/{path.name} from the backup (cp -p)", flush=True)

    def claim_kill(self, job_name: str) -> Fault | None:
        """The worker_killed fault that this launch must suffer, if any."""
        if self.kill is not None and job_name == KILLED_JOB:
            fault, self.kill = self.kill, None
            return fault
        return None

    def close(self) -> None:
        """End what is still in force (a read-only folder would outlive the year)."""
        for f in self.faults:
            if f.started and not f.ended and f.hours:
                f.ended = True
                self.end(f)


def read_only(folder: Path):
    """Make `folder` (and all below it) read-only for this process; returns the undo. Root
    is not stopped by permissions: the folder is bind-mounted read-only over itself (needs
    the right to mount); anyone else loses the write bits of every folder in it."""
    folder = Path(folder)
    if os.geteuid() == 0:
        def run(*args: str) -> None:
            done = subprocess.run(args, capture_output=True, text=True, check=False)
            if done.returncode:
                raise OSError(f"{' '.join(args)}: {done.stderr.strip() or done.returncode}")

        run("mount", "--bind", str(folder), str(folder))
        try:
            run("mount", "-o", "remount,ro,bind", str(folder))
        except OSError:
            run("umount", str(folder))
            raise
        return lambda: run("umount", str(folder))
    modes = {d: d.stat().st_mode for d in [folder, *(p for p in folder.rglob("*")
                                                     if p.is_dir() and not p.is_symlink())]}
    for d, mode in modes.items():
        d.chmod(mode & ~0o222)

    def undo() -> None:
        for d, mode in modes.items():
            d.chmod(mode)
    return undo


def not_injected(f: Fault) -> bool:
    """A fault this machine cannot inject (reported, not failed: e.g. disk_readonly as root
    without the right to mount)."""
    return f.note.startswith("not injected")


def account(faults: list[Fault], alerts: list[tuple[str, dict]]) -> dict:
    """Each fault with the alerts that answered it; the false alarms; the verdict's parts."""
    matched: dict[int, list[dict]] = {i: [] for i in range(len(faults))}
    false_alarms = []
    for at, body in alerts:
        when = dt.datetime.fromisoformat(at)
        candidates = [i for i, f in enumerate(faults) if f.expected == body.get("event")
                      and f.at <= when <= f.at + MATCH_WITHIN]
        if candidates:
            matched[candidates[-1]].append({"at": at, "event": body.get("event")})
        else:
            false_alarms.append({"at": at, "event": body.get("event"),
                                 "text": str(body.get("text", ""))[:200]})
    rows = [{"fault": f.describe(), "expected": f.expected, "alerts": matched[i],
             "ok": len(matched[i]) == (1 if f.expected else 0) or not_injected(f),
             "note": f.note}
            for i, f in enumerate(faults)]
    return {"faults": rows, "false_alarms": false_alarms,
            "faults_alerted_once": sum(1 for r in rows if r["expected"] and r["ok"]),
            "faults_expecting_an_alert": sum(1 for r in rows if r["expected"]),
            "duplicates": sum(max(0, len(r["alerts"]) - 1) for r in rows)}
