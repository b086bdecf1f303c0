"""Is the process that runs a Dagster run still there? (standard library only)

Crash recovery marks failed the runs whose process is gone. Marking a live run failed is
the worse mistake (its warehouse slot is freed and a second writer starts beside it), so a
process that exists but cannot be inspected counts as alive: another user's run, or /proc
hidden by `hidepid=2` / systemd's `ProtectProc=invisible`.
"""
from __future__ import annotations

import os
from pathlib import Path

REUSE_MARGIN_S = 2.0   # clock ticks and the recorded moment are not exact


def _started_at(pid: int) -> tuple[str, float] | None:
    """(state letter, start time in epoch seconds) of process `pid` from /proc, or None
    when /proc does not show it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (OSError, StopIteration, ValueError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0], boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def alive(pid: int, since: float | None = None) -> bool:
    """False only when process `pid` is known to be gone: no such process (signal 0 gives
    ESRCH), a zombie, or, when `since` is given and /proc shows its start, a process that
    started after that moment (after a reboot the same pid may be another process). A
    process that exists but is not ours (EPERM) or whose /proc entry is hidden is alive."""
    if pid <= 0:           # 0 and -1 would name process groups, not a process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True        # exists, owned by another user
    seen = _started_at(pid)
    if seen is None:
        return True        # exists, but /proc does not show it: cannot say it is gone
    state, started = seen
    if state == "Z":       # has finished, not yet reaped
        return False
    return since is None or started <= since + REUSE_MARGIN_S
