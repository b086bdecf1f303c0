"""`observatoire serve`: the Dagster webserver and exactly one daemon, supervised as one.

Both run on the project's DAGSTER_HOME, each in its own process group. SIGINT, SIGTERM or
SIGHUP stops both: the runs in flight that the daemon launched are cancelled first (so that
they end CANCELED, not crashed; the runs of `observatoire run` are left alone), then the
signal is forwarded to each group, then SIGKILL after the grace period, and serve exits 0.
If either dies on its own, the other is stopped and serve exits 1, so that systemd
(Restart=on-failure) starts the pair again. Every `sweep_every_s` the supervisor marks
failed the runs whose process is gone (`automation.recover_dead_runs`), so that a crashed
run never holds the run queue.

Nothing serve starts outlives it, whatever way serve ends:
- the signal handlers are in place before the first child starts (before the manifest is
  parsed), and a signal that comes while a child is being started waits until that child
  is recorded (`deferred_signals`);
- `run` stops the children it started on every way out (a signal, a child's death, an
  exception);
- each child has PR_SET_PDEATHSIG = SIGKILL (Linux): a SIGKILL of serve kills the webserver
  and the daemon with it;
- the processes *they* start (code servers, run workers) are in their process groups, which
  the kernel does not stop: a tiny watchdog (`python -m dagster_project.service.serve
  --watchdog`, in a session of its own) is told each group and holds a pipe from serve; when
  the pipe closes without serve's "done" (serve was SIGKILLed), it sends SIGTERM to every
  group, then SIGKILL after WATCHDOG_GRACE_S. Measured: without it, the daemon's code
  server outlived a SIGKILLed serve by 10-30 s and the webserver's by 60-90 s (their
  gRPC heartbeat timeouts), a run worker until its run ended; with it, everything was gone
  2-4 s after the kill, 9.5 s with a run in flight (that run ends FAILURE);
- the groups are also written to DAGSTER_HOME/observatoire-daemon.json: if both serve and
  its watchdog were killed, the next serve stops what is left of them before starting.

One daemon per DAGSTER_HOME: serve (and `observatoire ui`, whose `dagster dev` starts a
daemon too) holds DAGSTER_HOME/observatoire-daemon.lock while it runs (`DaemonLock`); the
second to come refuses to start.
"""
from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self

from dagster_project.service.status import HEARTBEAT_FRESH_S, heartbeats

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_S = 30.0
CANCEL_S = 20.0       # how long in-flight runs get to end CANCELED before the stop goes on
POLL_S = 0.5
SWEEP_ENV = "OBSERVATOIRE_SWEEP_INTERVAL_S"
SWEEP_S = 60.0
WATCHDOG_GRACE_S = 10.0   # SIGTERM -> SIGKILL for what a SIGKILLed serve left
MODULE = "dagster_project.definitions"
LOCK_FILE = "observatoire-daemon.lock"
STATE_FILE = "observatoire-daemon.json"
PR_SET_PDEATHSIG = 1


def commands(host: str, port: int) -> dict[str, list[str]]:
    """The two processes serve supervises (the project environment's executables)."""
    bin_dir = Path(sys.executable).parent
    return {
        "webserver": [str(bin_dir / "dagster-webserver"), "-m", MODULE, "-h", host,
                      "-p", str(port)],
        "daemon": [str(bin_dir / "dagster-daemon"), "run", "-m", MODULE],
    }


def _restore_signals() -> None:
    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    # a blocked mask is inherited across fork and exec, whoever started us
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)


def _prctl() -> Callable | None:
    """libc's prctl (Linux), looked up in the parent: the child only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _child_setup(deathsig: int | None) -> Callable[[], None]:
    prctl = _prctl() if deathsig else None
    parent = os.getpid()

    def setup() -> None:  # runs in the child, between fork and exec
        _restore_signals()
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, int(deathsig), 0, 0, 0)
            if os.getppid() != parent:  # the parent died before prctl: die as it would
                os.kill(os.getpid(), deathsig)
    return setup


def start(cmd: list[str], deathsig: int | None = None, **popen) -> subprocess.Popen:
    """Start `cmd` as the leader of a new process group, default signal handlers restored
    (background shells start us with SIGINT/SIGTERM ignored, and children inherit that);
    with `deathsig`, the kernel sends it that signal when we die (Linux, PR_SET_PDEATHSIG)."""
    return subprocess.Popen(cmd, preexec_fn=_child_setup(deathsig),  # noqa: PLW1509 — before exec
                            start_new_session=True, **popen)


def killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Signalled(BaseException):  # not caught by the sweep's `except Exception`
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def ignore_signals() -> None:
    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


_TRAP: dict = {"depth": 0, "pending": None, "raised": None}   # main thread only (handlers)


@contextlib.contextmanager
def trapped_signals() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise `Signalled` (once: a second signal is dropped, it
    must not interrupt the clean-up the first one started; inside `deferred_signals`, on
    leaving it); the old handlers come back on exit."""
    _TRAP.update(depth=0, pending=None, raised=None)

    def handler(signum, _frame) -> None:
        if _TRAP["raised"] is not None or _TRAP["pending"] is not None:
            return
        if _TRAP["depth"]:
            _TRAP["pending"] = signum
            return
        _TRAP["raised"] = signum
        raise Signalled(signum)

    previous = {sig: signal.signal(sig, handler) for sig in FORWARDED_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Inside the block, a trapped signal only waits; it is raised when the block ends.
    Around `procs[name] = start(...)`: raised inside Popen, after the fork, it would lose the
    child's Popen object. (Python runs signal handlers in the main thread whichever thread
    the kernel picked, so a flag works where a thread's signal mask would not: serve has
    other threads by then.)"""
    _TRAP["depth"] += 1
    try:
        yield
    finally:
        _TRAP["depth"] -= 1
        if not _TRAP["depth"] and _TRAP["pending"] is not None and _TRAP["raised"] is None:
            signum, _TRAP["pending"] = _TRAP["pending"], None
            _TRAP["raised"] = signum
            raise Signalled(signum)


def signalled_as(exc: BaseException) -> int | None:
    """The signal behind `exc`: a `Signalled`, or any exception raised after the trapped
    signal was (a library that catches BaseException turns it into an error of its own:
    dbt's runner returns it as a failed parse, which parse_manifest raises as SystemExit)."""
    if isinstance(exc, Signalled):
        return exc.signum
    return _TRAP["raised"]


def stop_all(procs: dict[str, subprocess.Popen], sig: int, grace_s: float,
             say: Callable[[str], None]) -> None:
    """Send `sig` to every process group, wait up to `grace_s`, SIGKILL what is left."""
    for proc in procs.values():
        killpg(proc.pid, sig)
    deadline = time.monotonic() + grace_s
    for name, proc in procs.items():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{name} still running after {grace_s:.0f} s: killing it")
    for proc in procs.values():
        killpg(proc.pid, signal.SIGKILL)  # stragglers of each group (code servers, …)
        proc.wait()


def sweep_interval() -> float:
    try:
        return max(1.0, float(os.environ.get(SWEEP_ENV) or SWEEP_S))
    except ValueError:
        return SWEEP_S


def recover(say: Callable[[str], None]) -> None:
    """Mark failed the runs whose process is gone (never raises: serve must keep running)."""
    from dagster import DagsterInstance

    from dagster_project.defs.automation import recover_dead_runs

    try:
        with DagsterInstance.get() as instance:
            for run_id, pid in recover_dead_runs(instance):
                say(f"run {run_id} was left in progress by a process that is gone "
                    f"(pid {pid}): marked failed")
    except Exception as exc:  # noqa: BLE001 - a storage hiccup: the next sweep retries
        say(f"crashed-run check skipped: {type(exc).__name__}: {exc}")


def cancel_in_flight(say: Callable[[str], None], timeout_s: float = CANCEL_S,
                     instance=None) -> None:
    """Ask the run workers of the runs in progress that the daemon launched to stop, and
    wait (bounded) until they end, so that a stop leaves CANCELED runs rather than runs a
    crash left behind. The runs of `observatoire run` (in-process, tagged with the CLI's
    pid) are the operator's, not serve's: they are left alone."""
    from dagster import DagsterInstance, RunsFilter

    from dagster_project.defs.automation import IN_PROGRESS, PID_TAG

    try:
        with (contextlib.nullcontext(instance) if instance is not None
              else DagsterInstance.get()) as inst:
            runs = []
            for run in inst.get_runs(RunsFilter(statuses=list(IN_PROGRESS))):
                if run.tags.get(PID_TAG):
                    say(f"leaving run {run.run_id} ({run.job_name}) alone: `observatoire run`"
                        f" (pid {run.tags[PID_TAG]}) runs it")
                    continue
                runs.append(run)
            for run in runs:
                say(f"cancelling run {run.run_id} ({run.job_name})")
                with contextlib.suppress(Exception):
                    inst.run_launcher.terminate(run.run_id)
            deadline = time.monotonic() + timeout_s
            ids = [r.run_id for r in runs]
            while ids and time.monotonic() < deadline:
                time.sleep(0.5)
                ids = [i for i in ids if inst.get_run_by_id(i).status in IN_PROGRESS]
            if ids:
                say(f"{len(ids)} run(s) still in progress after {timeout_s:.0f} s: stopping "
                    "anyway (marked failed at the next start)")
    except Exception as exc:  # noqa: BLE001 - stopping must go on
        say(f"could not cancel the runs in flight: {type(exc).__name__}: {exc}")


# --- one daemon per DAGSTER_HOME ------------------------------------------------------------

class DaemonRunning(Exception):
    """Another serve or ui holds the DAGSTER_HOME's daemon lock."""

    def __init__(self, holder: dict):
        self.holder = holder
        owner = holder.get("owner") or "another process"
        pid = holder.get("pid")
        where = f", its UI at {holder['url']}" if holder.get("url") else ""
        super().__init__(f"observatoire {owner}" + (f" (pid {pid})" if pid else "")
                         + f" already runs a Dagster daemon on this DAGSTER_HOME{where}")


def read_state(dagster_home: Path) -> dict:
    try:
        state = json.loads((Path(dagster_home) / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _write_state(dagster_home: Path, state: dict) -> None:
    path = Path(dagster_home) / STATE_FILE
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    os.replace(tmp, path)


def _try_lock(dagster_home: Path, shared: bool = False) -> int | None:
    """The lock file's fd, locked (exclusive, or shared to probe), or None when someone else
    holds it."""
    fd = os.open(Path(dagster_home) / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def lock_holder(dagster_home: Path) -> dict | None:
    """What DAGSTER_HOME/observatoire-daemon.json says of the serve or ui holding the lock
    now (owner, pid, url), or None when nobody holds it."""
    if not (Path(dagster_home) / LOCK_FILE).exists():
        return None
    fd = _try_lock(dagster_home, shared=True)
    if fd is None:
        return read_state(dagster_home)
    os.close(fd)
    return None


def _in_group_with(pgid: int, marker: bytes) -> list[int]:
    """Live processes of group `pgid` whose environment holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) != pgid or fields[0] == "Z":
                continue
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def reap_leftovers(dagster_home: Path, say: Callable[[str], None],
                   grace_s: float = WATCHDOG_GRACE_S) -> list[int]:
    """Stop what a previous serve left running (it was killed together with its watchdog):
    the members of the process groups it recorded that still run on this DAGSTER_HOME.
    Returns the pids found."""
    state = read_state(dagster_home)
    if state.get("stopped_at") or not state.get("groups"):
        return []
    marker = f"DAGSTER_HOME={dagster_home}".encode()
    left = {g: _in_group_with(g, marker) for g in state["groups"]}
    left = {g: pids for g, pids in left.items() if pids}
    if not left:
        return []
    pids = sorted(p for ps in left.values() for p in ps)
    say(f"the previous {state.get('owner', 'serve')} (pid {state.get('pid')}) left processes "
        f"running ({', '.join(map(str, pids))}): stopping them")
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_in_group_with(g, marker) for g in left):
        time.sleep(0.2)
    for g in left:
        for pid in _in_group_with(g, marker):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    return pids


class DaemonLock:
    """Held by serve (or ui) while its daemon may run on `dagster_home`: an exclusive flock
    on DAGSTER_HOME/observatoire-daemon.lock (released by the kernel however the holder
    ends), and DAGSTER_HOME/observatoire-daemon.json, written by the holder only: owner, pid,
    url, the process groups it started, `stopped_at` once they are all stopped."""

    def __init__(self, dagster_home: Path, owner: str, url: str | None = None):
        self.home, self.owner, self.url = Path(dagster_home), owner, url
        self.fd: int | None = None
        self.state: dict = {}

    def acquire(self, say: Callable[[str], None] | None = None) -> Self:
        self.home.mkdir(parents=True, exist_ok=True)
        fd = _try_lock(self.home)
        for _ in range(10):  # someone probing the lock (`lock_holder`) holds it for an instant
            if fd is not None:
                break
            time.sleep(0.1)
            fd = _try_lock(self.home)
        if fd is None:
            raise DaemonRunning(read_state(self.home))
        self.fd = fd
        if say is not None:
            reap_leftovers(self.home, say)
        self.state = {"owner": self.owner, "pid": os.getpid(), "url": self.url,
                      "started_at": time.time(), "groups": [], "stopped_at": None}
        _write_state(self.home, self.state)
        return self

    def add_group(self, pgid: int) -> None:
        self.state["groups"].append(pgid)
        with contextlib.suppress(OSError):
            _write_state(self.home, self.state)

    def release(self) -> None:
        if self.fd is None:
            return
        self.state["stopped_at"] = time.time()
        with contextlib.suppress(OSError):
            _write_state(self.home, self.state)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> Self:
        if self.fd is None:
            self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def daemon_elsewhere(dagster_home: Path, now: float | None = None) -> str | None:
    """Why no daemon may start on `dagster_home` now, or None: a serve or ui holds the lock,
    or a daemon wrote a heartbeat less than HEARTBEAT_FRESH_S ago, after the last holder
    stopped (a daemon that the lock does not know of: a bare `dagster dev`, or the daemon of
    a serve or ui killed less than two minutes ago)."""
    holder = lock_holder(dagster_home)
    if holder is not None:
        return str(DaemonRunning(holder))
    now = time.time() if now is None else now
    beats = heartbeats(dagster_home)
    if not beats:
        return None
    last = max(beats.values())
    stopped = read_state(dagster_home).get("stopped_at") or 0.0
    if now - last <= HEARTBEAT_FRESH_S and last > stopped:
        wait = HEARTBEAT_FRESH_S - (now - last)
        return (f"a Dagster daemon wrote a heartbeat {max(0.0, now - last):.0f} s ago on this "
                "DAGSTER_HOME and no serve or ui holds it (a `dagster dev` started by hand, or "
                "the daemon of a serve or ui killed less than two minutes ago); if none runs, "
                f"retry in {wait:.0f} s")
    return None


# --- the watchdog -----------------------------------------------------------------------------

class Watchdog:
    """`python -m dagster_project.service.serve --watchdog`: in a session of its own, it
    reads process group ids from a pipe that only serve holds; "done" means serve stopped
    them itself. EOF without "done" means serve died (SIGKILL): it stops the groups."""

    def __init__(self, dagster_home: Path | None = None, grace_s: float = WATCHDOG_GRACE_S):
        cmd = [sys.executable, "-m", "dagster_project.service.serve", "--watchdog",
               str(grace_s), str(os.getpid()), str(dagster_home or "")]
        self.proc = start(cmd, stdin=subprocess.PIPE)

    def _send(self, line: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # the watchdog is gone: nothing to do
            self.proc.stdin.write(f"{line}\n".encode())
            self.proc.stdin.flush()

    def add(self, pgid: int) -> None:
        self._send(str(pgid))

    def done(self) -> None:
        self._send("done")
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


def watchdog_main(grace_s: float, serve_pid: int, dagster_home: str) -> int:
    for sig in FORWARDED_SIGNALS:  # only serve's pipe ends it
        signal.signal(sig, signal.SIG_IGN)
    groups: list[int] = []
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            break
        line = line.strip()
        if line == b"done":
            return 0
        if line.isdigit():
            groups.append(int(line))
    alive = [g for g in groups if group_alive(g)]
    if alive:
        print(f"observatoire serve (pid {serve_pid}) is gone: stopping the process groups it "
              f"left ({', '.join(map(str, alive))})", flush=True)
        for g in alive:
            killpg(g, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(group_alive(g) for g in alive):
            time.sleep(0.1)
        for g in alive:
            if group_alive(g):
                killpg(g, signal.SIGKILL)
    if dagster_home:  # say they are stopped, unless a new holder came meanwhile
        fd = _try_lock(Path(dagster_home))
        if fd is not None:
            try:
                state = read_state(Path(dagster_home))
                if state.get("pid") == serve_pid and not state.get("stopped_at"):
                    state["stopped_at"] = time.time()
                    _write_state(Path(dagster_home), state)
            finally:
                os.close(fd)
    return 0


# --- the supervisor ---------------------------------------------------------------------------

def watch(procs: dict[str, subprocess.Popen], say: Callable[[str], None],
          grace_s: float = GRACE_S, sweep: Callable[[], None] | None = None) -> int:
    """Poll the children until one dies (stop the others, return 1); call `sweep` every
    `sweep_interval()` seconds meanwhile. A signal ends it by raising `Signalled`."""
    next_sweep = time.monotonic() + sweep_interval()
    while True:
        if sweep is not None and time.monotonic() >= next_sweep:
            sweep()
            next_sweep = time.monotonic() + sweep_interval()
        for name, proc in procs.items():
            code = proc.poll()
            if code is not None:
                ignore_signals()
                say(f"{name} exited (code {code}): stopping the others")
                # its own group too: a dead daemon leaves its code server and run workers
                stop_all(procs, signal.SIGTERM, grace_s, say)
                return 1
        time.sleep(POLL_S)


def run(cmds: dict[str, list[str]], say: Callable[[str], None], *,
        prepare: Callable[[], None] | None = None, grace_s: float = GRACE_S,
        sweep: Callable[[], None] | None = None, on_signal: Callable[[], None] | None = None,
        on_started: Callable[[int], None] | None = None,
        dagster_home: Path | None = None) -> int:
    """`prepare()`, then start every command and supervise them; the signal handlers are in
    place from the start. A signal (at any moment): `on_signal()` if children run, stop
    them, return 0. A child's death: stop the others, return 1. An exception: the children
    are stopped, the exception goes on. `on_started(pgid)` is told each child's group."""
    procs: dict[str, subprocess.Popen] = {}
    watchdog: Watchdog | None = None
    with trapped_signals():
        try:
            try:
                if prepare is not None:
                    prepare()
                    if _TRAP["raised"] is not None:  # raised in it, swallowed by a library
                        raise Signalled(_TRAP["raised"])   # (dbt's runner): not lost
                with deferred_signals():
                    watchdog = Watchdog(dagster_home)
                for name, cmd in cmds.items():
                    with deferred_signals():
                        procs[name] = start(cmd, deathsig=signal.SIGKILL)
                        watchdog.add(procs[name].pid)
                        if on_started is not None:
                            on_started(procs[name].pid)
                return watch(procs, say, grace_s, sweep)
            except BaseException as exc:
                signum = signalled_as(exc)
                if signum is None:
                    raise
                ignore_signals()
                if not procs:
                    say(f"{signal.Signals(signum).name} received before the webserver and "
                        "the daemon started: stopping")
                    return 0
                say(f"{signal.Signals(signum).name} received: stopping the webserver and "
                    "the daemon…")
                if on_signal is not None:
                    on_signal()
                stop_all(procs, signum, grace_s, say)
                return 0
        finally:
            ignore_signals()
            if any(p.poll() is None or group_alive(p.pid) for p in procs.values()):
                stop_all(procs, signal.SIGTERM, grace_s, say)  # after an exception
            if watchdog is not None:
                watchdog.done()


if __name__ == "__main__" and sys.argv[1:2] == ["--watchdog"]:
    sys.exit(watchdog_main(float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
