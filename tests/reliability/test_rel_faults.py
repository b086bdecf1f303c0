"""Faults: a load killed half-way, a disk full during an export, a reader holding the
published copy while it is replaced."""
from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fixture_warehouse import MONTHS
from rel_helpers import JULY, JUNE, NOW, dumps, fingerprint, media, query, snapshot, write

from dagster_project.load.snapshots import load_months
from dagster_project.publish.exports import csv_export
from dagster_project.publish.exports.csv_export import export_month
from dagster_project.publish.warehouse_copy import publish

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


# --------------------------------------------------------------------------- kill -9 mid-load

def _big_july(landing_root: Path, files: int = 3, lines_per_file: int = 3300) -> int:
    """~50 MB of valid July lines (25 posts each), plus a few bad ones; returns the bytes."""
    items = [media(f"POST{j:03d}", f"2021-07-{1 + j % 27:02d}T09:{j % 60:02d}:00+0000",
                   likes=j * 7, comments=j % 5) for j in range(25)]
    template = dumps(snapshot("HANDLE", "FETCHED", items=items, followers_count=123456789))
    for f in range(files):
        out = []
        for i in range(lines_per_file):
            line = (template.replace("HANDLE", f"compte_{f}_{i:05d}")
                    .replace("FETCHED", f"2021-07-{28 + i % 4:02d}T{i % 24:02d}:00:00Z")
                    .replace("POST", f"p{f}_{i}_").replace("123456789", str(1000 + i)))
            out.append(line)
        out[100] = out[100][:-30]                                   # a truncated line
        out[200] = dumps(snapshot(f"compte_{f}_00201", "2021-09-01T00:00:00Z"))
        write(landing_root, "2021-07", f"graph_api-{f}.ndjson", out)
    write(landing_root, "2021-06", "graph_api-0.ndjson",
          [dumps(snapshot(f"juin_{i}", "2021-06-20T10:00:00Z", items=[media(
              f"j{i}", "2021-06-19T10:00:00+0000")])) for i in range(50)] + ["{bad"])
    return sum(p.stat().st_size for p in (landing_root / "2021-07").iterdir())


@pytest.fixture(scope="module")
def big_landing(tmp_path_factory) -> tuple[Path, dict]:
    """The landing folder, and the fingerprint of a clean load of June + July."""
    root = tmp_path_factory.mktemp("big") / "landing"
    size = _big_july(root)
    assert size > 45e6, size
    clean = root.parent / "clean.duckdb"
    result = load_months(clean, root, [JUNE, JULY], now=NOW)
    assert (result.loaded, result.rejected) == (50 + 3 * 3298, 1 + 3 * 2)
    return root, fingerprint(clean)


LOADER = textwrap.dedent("""
    import datetime as dt, sys
    from dagster_project.load.snapshots import load_months
    load_months(sys.argv[1], sys.argv[2], [dt.date(2021, 7, 1)],
                now=dt.datetime(2021, 8, 15, 12, tzinfo=dt.timezone.utc))
""")


@pytest.mark.parametrize("kill_when", ["staging", "writing"])
def test_kill_during_load_then_rerun_equals_clean_load(big_landing, tmp_path, kill_when):
    landing_root, clean = big_landing
    db = tmp_path / "warehouse.duckdb"
    wal = Path(f"{db}.wal")
    load_months(db, landing_root, [JUNE], now=NOW)                 # committed before the crash
    june = query(db, "select * from raw.snapshots order by all")
    baseline = db.stat().st_size
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path / "tmp")}
    proc = subprocess.Popen([sys.executable, "-c", LOADER, str(db), str(landing_root)],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        armed_at = None
        while proc.poll() is None and time.monotonic() < deadline:
            if kill_when == "staging":
                # the child has opened the warehouse and is reading / validating lines
                if armed_at is None and any((tmp_path / "tmp").glob("obs-load-*")):
                    armed_at = time.monotonic()
                if armed_at is not None and time.monotonic() - armed_at > 0.4:
                    break
            elif _size(db) > baseline or _size(wal) > 0:
                break                                               # rows are being written
            time.sleep(0.002)
        assert proc.poll() is None, (
            f"the load finished before it could be killed ({kill_when}): "
            + proc.stderr.read().decode()[-2000:])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    # after the crash: June intact, July all or nothing
    assert query(db, "select * from raw.snapshots where month = ? order by all", [JUNE]) == june
    july = query(db, "select count(*) from raw.snapshots where month = ?", [JULY])[0][0]
    assert july in (0, 3 * 3298), july

    result = load_months(db, landing_root, [JULY], now=NOW)         # the rerun
    assert (result.loaded, result.rejected) == (3 * 3298, 3 * 2)
    assert fingerprint(db) == clean
    assert query(db, "select count(*) from raw.media")[0][0] == 50 + 3 * 3298 * 25


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


# --------------------------------------------------------------------------- disk full (ENOSPC)

def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


class _DiskFull:
    """`open` for csv_export: writes succeed until `budget` bytes, then ENOSPC (a disk
    filling up in the middle of a file: part of the data lands, then the error)."""

    def __init__(self, budget: int):
        self.budget = budget
        self.written = 0
        self.failed_on: str | None = None

    def __call__(self, file, mode="r", *args, **kwargs):
        fh = open(file, mode, *args, **kwargs)  # noqa: SIM115
        if "w" not in mode:
            return fh
        real_write = fh.write

        def write(data):
            size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
            if self.written + size > self.budget:
                real_write(data[:max(0, self.budget - self.written)])
                fh.flush()
                self.failed_on = Path(file).name
                raise OSError(errno.ENOSPC, "No space left on device", str(file))
            self.written += size
            return real_write(data)

        fh.write = write
        return fh


@pytest.mark.parametrize(("budget", "fails_on"), [
    (10, "region.csv"), (1_500, "departement.csv"), (5_000, "grande_ville.csv"),
    (12_000, "32.csv"), (25_500, "76.csv"), (30_000, "LISEZMOI.txt")])   # 32: departements/, 76: regions/
def test_disk_full_mid_file_keeps_the_previous_export(fixture_warehouse, tmp_path, monkeypatch,
                                                      budget, fails_on):
    july = MONTHS[-1]
    export_month(fixture_warehouse, july, tmp_path)
    before = _tree(tmp_path / "2021-07")
    disk = _DiskFull(budget)
    monkeypatch.setattr(csv_export, "open", disk, raising=False)
    with pytest.raises(OSError) as info:
        export_month(fixture_warehouse, july, tmp_path, dialect="rfc4180")
    monkeypatch.undo()
    assert (info.value.errno, disk.failed_on) == (errno.ENOSPC, fails_on)
    assert _tree(tmp_path / "2021-07") == before, "previous export byte-identical"
    assert [p.name for p in tmp_path.iterdir()] == ["2021-07"], "no temp folder left"
    # once space is back, the export works and replaces the folder
    export_month(fixture_warehouse, july, tmp_path, dialect="rfc4180")
    assert _tree(tmp_path / "2021-07")["departement.csv"].startswith(b"rang,")


def test_disk_full_reported_by_fsync(fixture_warehouse, tmp_path, monkeypatch):
    """Delayed allocation: write() succeeds, the ENOSPC surfaces at fsync of the new files."""
    july = MONTHS[-1]
    export_month(fixture_warehouse, july, tmp_path)
    before = _tree(tmp_path / "2021-07")
    real_fsync = os.fsync
    calls = []

    def fsync(fd):
        if not os.path.isdir(f"/proc/self/fd/{fd}"):
            calls.append(os.readlink(f"/proc/self/fd/{fd}"))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError) as info:
        export_month(fixture_warehouse, july, tmp_path, dialect="rfc4180")
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC
    assert len(calls) == 1 and ".2021-07.tmp-" in calls[0], calls
    assert _tree(tmp_path / "2021-07") == before
    assert [p.name for p in tmp_path.iterdir()] == ["2021-07"]


def test_disk_full_on_first_export_leaves_nothing(fixture_warehouse, tmp_path, monkeypatch):
    monkeypatch.setattr(csv_export, "open", _DiskFull(5_000), raising=False)
    with pytest.raises(OSError, match="No space left on device"):
        export_month(fixture_warehouse, MONTHS[-1], tmp_path / "exports")
    assert list((tmp_path / "exports").iterdir()) == [], "no half-written month folder"


# --------------------------------------------------------------------------- publish vs reader

READER = textwrap.dedent("""
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    q = "select count(*), coalesce(sum(followers_count), 0) from raw.snapshots"
    print(*con.execute(q).fetchone(), flush=True)
    sys.stdin.readline()                      # the test publishes meanwhile
    print(*con.execute(q).fetchone(), flush=True)
    print(*con.execute("select count(*) from raw.snapshots where handle = 'nouveau'").fetchone(),
          flush=True)
""")


def _read_once(path: Path) -> str:
    code = ("import sys, duckdb; c = duckdb.connect(sys.argv[1], read_only=True); "
            "print(*c.execute('select count(*), coalesce(sum(followers_count), 0) "
            "from raw.snapshots').fetchone())")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, timeout=60, check=True)
    return out.stdout.strip()


def test_publish_while_a_reader_holds_the_published_copy(landing, tmp_path):
    write(landing.root, "2021-07", "a.ndjson",
          [dumps(snapshot(f"compte_{i}", followers_count=100 + i)) for i in range(5)])
    landing.load()
    published = tmp_path / "data" / "published" / "warehouse.duckdb"
    publish(landing.db, published)
    old_digest = hashlib.sha256(published.read_bytes()).hexdigest()

    reader = subprocess.Popen([sys.executable, "-c", READER, str(published)], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        assert reader.stdout.readline().split() == ["5", "510"]
        # the warehouse changes and is published again while the analyst's session is open
        write(landing.root, "2021-07", "b.ndjson", [dumps(snapshot("nouveau", followers_count=1000))])
        landing.load()
        assert publish(landing.db, published).mode == "incremental"
        assert _read_once(published) == "6 1510", "a new reader sees the new data"
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().split() == ["5", "510"], "the open reader keeps its data"
        assert reader.stdout.readline().split() == ["0"]
        reader.stdin.close()
        assert reader.wait(timeout=30) == 0, reader.stderr.read()
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    assert hashlib.sha256(published.read_bytes()).hexdigest() != old_digest
    assert published.is_symlink() and published.resolve().parent.parent.name == ".slots"
    assert not [p for p in published.parent.rglob("*") if p.name.endswith((".tmp", ".link", ".wal"))], \
        "no temp file left in the published folder"
    # and the pipeline's own warehouse is still writable
    landing.load()
    assert query(landing.db, "select count(*) from raw.snapshots") == [(6,)]
