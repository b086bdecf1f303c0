"""The landing archive: manifests, `verify`, `backup` (fast: small files, no dbt)."""
from __future__ import annotations

import datetime as dt
import gzip
import json
import signal
import subprocess
import sys
import textwrap

import duckdb
import pytest
from pipeline_support import ROOT, run_cli

from dagster_project.archive import backup as archive_backup
from dagster_project.archive import landing
from dagster_project.archive import verify as archive
from dagster_project.load.snapshots import load_months

NOW = dt.datetime(2021, 9, 15, tzinfo=dt.UTC)
JULY, AUGUST = dt.date(2021, 7, 1), dt.date(2021, 8, 1)


def snap(handle: str, fetched_at: str, followers: int = 100) -> str:
    return json.dumps({
        "handle": handle, "fetched_at": fetched_at, "source": "graph_api", "status": "ok",
        "error": None, "business_discovery": {
            "id": "1", "username": handle, "name": handle, "followers_count": followers,
            "follows_count": 10, "media_count": 5, "media": {"data": [
                {"id": f"{handle}-1", "timestamp": fetched_at[:10] + "T08:00:00+0000",
                 "like_count": 3, "comments_count": 1}]}}})


@pytest.fixture
def data(tmp_path):
    """A data folder: two months written by a source (4 files, one bad line), loaded."""
    root = tmp_path / "data"
    land = root / "landing" / "instagram"
    for key, day in (("2021-07", "2021-07-20"), ("2021-08", "2021-08-20")):
        for i in (1, 2):
            lines = [snap(f"h{i}{k}", f"{day}T1{k}:00:00Z", 100 * k) for k in range(5)]
            if i == 2:
                lines.append('{"truncated": ')          # rejected, counted
            landing.write_landing_file(land / key / f"graph_api-{i}.ndjson.gz", lines,
                                       recorded_by="graph_api")
    load_months(root / "warehouse.duckdb", land, [JULY, AUGUST], now=NOW)
    return root


def check(root, months=None):
    return archive.verify(root / "landing" / "instagram", root / "warehouse.duckdb", months)


def named(report) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in report.errors:
        out[f.file] = f"{out[f.file]} | {f.problem}" if f.file in out else f.problem
    return out


def flip_a_byte(path):
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))


def test_written_files_are_gzip_listed_and_checkable_with_sha256sum(data):
    folder = data / "landing" / "instagram" / "2021-07"
    assert sorted(p.name for p in folder.iterdir()) == [
        "MANIFEST.tsv", "graph_api-1.ndjson.gz", "graph_api-2.ndjson.gz"]
    entries = landing.read_manifest(folder)
    assert entries["graph_api-2.ndjson.gz"].lines == 6
    assert entries["graph_api-1.ndjson.gz"].recorded_by == "graph_api"
    assert gzip.decompress((folder / "graph_api-1.ndjson.gz").read_bytes()).count(b"\n") == 5
    # anyone can check a folder with standard tools (the command the docs give)
    cmd = "tail -n +2 MANIFEST.tsv | awk -F'\\t' '{print $2 \"  \" $1}' | sha256sum -c"
    proc = subprocess.run(["bash", "-c", cmd], check=False, cwd=folder, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.count(": OK") == 2, proc.stdout + proc.stderr
    # never over an existing file
    with pytest.raises(FileExistsError):
        landing.write_landing_file(folder / "graph_api-1.ndjson.gz", ["{}"], recorded_by="graph_api")
    with pytest.raises(ValueError):
        landing.write_landing_file(folder / "x.ndjson", ["{}"], recorded_by="graph_api")
    report = check(data)
    assert report.ok and report.files == 4 and report.loaded == 4, report.findings


def test_one_byte_changed_truncated_deleted_are_named(data):
    land = data / "landing" / "instagram"
    one = land / "2021-07" / "graph_api-1.ndjson.gz"
    flip_a_byte(one)
    two = land / "2021-07" / "graph_api-2.ndjson.gz"
    two.write_bytes(two.read_bytes()[:-10])
    (land / "2021-08" / "graph_api-1.ndjson.gz").unlink()
    problems = named(check(data))
    assert problems == {
        "2021-07/graph_api-1.ndjson.gz": "altered: its SHA-256 differs from the manifest's "
                                         "(same size: changed bytes)",
        "2021-07/graph_api-2.ndjson.gz": problems["2021-07/graph_api-2.ndjson.gz"],
        "2021-08/graph_api-1.ndjson.gz": "missing (listed in the manifest, not on disk)"}
    assert problems["2021-07/graph_api-2.ndjson.gz"].startswith("altered: ")
    assert "truncated" in problems["2021-07/graph_api-2.ndjson.gz"]
    # a month at a time
    assert set(named(check(data, ["2021-08"]))) == {"2021-08/graph_api-1.ndjson.gz"}


def test_a_file_added_by_hand_is_listed_then_listed_in_the_manifest_when_loaded(data):
    land = data / "landing" / "instagram"
    hand = land / "2021-07" / "import-1.ndjson"
    hand.write_text(snap("z1", "2021-07-21T10:00:00Z") + "\n\n" + snap("z2", "2021-07-21T10:00:00Z") + "\n")
    report = check(data)
    assert report.ok                                  # not loaded yet: listed, not an error
    assert [(f.file, f.problem) for f in report.notices] == [
        ("2021-07/import-1.ndjson", "not loaded yet")]
    load_months(data / "warehouse.duckdb", land, [JULY], now=NOW)
    entry = landing.read_manifest(land / "2021-07")["import-1.ndjson"]
    assert (entry.lines, entry.recorded_by) == (2, "loader")   # the blank line is no record
    report = check(data)
    assert report.ok and not report.notices and report.loaded == 5
    # changed after it was listed: the loader does not list it again, verify names it
    hand.write_text(snap("z1", "2021-07-21T10:00:00Z") + "\n")
    load_months(data / "warehouse.duckdb", land, [JULY], now=NOW)
    assert landing.read_manifest(land / "2021-07")["import-1.ndjson"] == entry
    problems = named(check(data))
    assert list(problems) == ["2021-07/import-1.ndjson"]
    assert problems["2021-07/import-1.ndjson"] == (
        "altered: 355 bytes instead of 711 (truncated) | warehouse drift: loaded from 355 "
        "bytes, the manifest lists 711; lines loaded 1 + rejected 0 ≠ 2 lines in the file")


def test_a_removed_manifest_line_and_warehouse_drift_are_named(data):
    land = data / "landing" / "instagram"
    manifest = land / "2021-08" / landing.MANIFEST
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(x for x in lines if "graph_api-2" not in x) + "\n")
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:
        con.execute("delete from raw.snapshots where file = '2021-07/graph_api-1.ndjson.gz' "
                    "and handle = 'h14'")
    report = check(data)
    problems = named(report)
    assert set(problems) == {"2021-08/graph_api-2.ndjson.gz", "2021-07/graph_api-1.ndjson.gz"}
    assert problems["2021-08/graph_api-2.ndjson.gz"].startswith("loaded, but not in the manifest")
    assert problems["2021-07/graph_api-1.ndjson.gz"] == (
        "warehouse drift: raw.snapshots holds 4 rows, 5 were loaded")
    todo = {f.file: f.todo for f in report.errors}
    assert todo["2021-07/graph_api-1.ndjson.gz"] == (
        "reload the month: observatoire run --source landing --from 2021-07 --to 2021-07")
    # reloading re-lists the file and removes the drift
    load_months(data / "warehouse.duckdb", land, [JULY, AUGUST], now=NOW)
    assert check(data).ok
    # a month loaded whose folder is gone
    (land / "2021-08").rename(data / "elsewhere")
    problems = named(check(data))
    assert set(problems) == {"2021-08/graph_api-1.ndjson.gz", "2021-08/graph_api-2.ndjson.gz"}


def test_a_file_lost_with_its_manifest_line_is_named_from_the_collections_run_log(data):
    """A month folder put back from a copy older than a night's collection: that night's
    file and its manifest line are gone together and the month rebuilt from the folder agrees
    with it, so files, manifest and warehouse check out; the collection's run log still lists
    the file (a gap found reading the year's landing_restored fault)."""
    from dagster_project.collect.window import append_run_log

    land = data / "landing" / "instagram"
    append_run_log(data, JULY, {"event": "started", "run_id": "r1",
                                "at": "2021-07-20T01:00:00Z"})
    append_run_log(data, JULY, {"event": "finished", "run_id": "r1", "ok": 5,
                                "at": "2021-07-20T01:05:00Z", "files": ["graph_api-2.ndjson.gz"]})
    assert archive.verify(land, data / "warehouse.duckdb", data_dir=data).ok
    (land / "2021-07" / "graph_api-2.ndjson.gz").unlink()
    landing.forget(land / "2021-07", ["graph_api-2.ndjson.gz"])
    load_months(data / "warehouse.duckdb", land, [JULY], now=NOW)      # the sensor's rebuild
    assert check(data).ok                                               # silent without the log
    report = archive.verify(land, data / "warehouse.duckdb", data_dir=data)
    assert named(report) == {"2021-07/graph_api-2.ndjson.gz": (
        "written by the collection (run r1 at 2021-07-20T01:05:00Z) but neither on disk nor "
        "in the manifest (the folder restored from an older copy?)")}
    # a month whose folder is gone altogether is still looked at
    import shutil
    shutil.rmtree(land / "2021-08")
    (data / "collection" / "2021-08.jsonl").write_text(
        '{"event":"finished","run_id":"r2","at":"2021-08-20T01:05:00Z",'
        '"files":["graph_api-1.ndjson.gz"]}\n')
    assert "2021-08/graph_api-1.ndjson.gz" in named(
        archive.verify(land, None, data_dir=data))


def test_verify_command_exit_codes_and_messages(data):
    ok = run_cli(["verify"], data)
    assert ok.returncode == 0, ok.stderr
    assert "OK: 2 month(s), 4 file(s) listed, 4 checked against the warehouse" in " ".join(ok.stderr.split())
    (data / "landing" / "instagram" / "2021-08" / "graph_api-2.ndjson.gz").unlink()
    bad = run_cli(["verify", "--month", "2021-08"], data)
    text = " ".join(bad.stderr.split())
    assert bad.returncode == 1
    assert "2021-08/graph_api-2.ndjson.gz: missing (listed in the manifest, not on disk) → restore it" in text
    assert "1 problem(s): 1 month(s)" in text
    assert run_cli(["verify", "--month", "2021-13"], data).returncode == 2


def tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_backup_is_incremental_and_verified(data, tmp_path):
    dest = tmp_path / "backup"
    registry = tmp_path / "accounts.csv"
    registry.write_text("handle,territory_id,source_url,checked_on\n")
    first = archive_backup.backup(data / "landing" / "instagram", dest,
                           archive_backup.registry_files(data, [registry]))
    assert first.ok and len(first.copied) == 4 and first.skipped == 0
    assert first.registries == ["registry/accounts.csv"]
    land = data / "landing" / "instagram"
    assert tree(dest / "landing" / "instagram") == tree(land)
    landing.write_landing_file(land / "2021-09" / "graph_api-1.ndjson.gz",
                               [snap("a", "2021-09-01T10:00:00Z")], recorded_by="graph_api")
    second = archive_backup.backup(land, dest, archive_backup.registry_files(data, [registry]))
    assert second.ok and second.copied == ["2021-09/graph_api-1.ndjson.gz"]
    assert second.skipped == 4
    assert tree(dest / "landing" / "instagram") == tree(land)
    # an altered source file is not spread to the backup: named instead
    one = land / "2021-07" / "graph_api-1.ndjson.gz"
    flip_a_byte(one)
    (dest / "landing" / "instagram" / "2021-07" / "graph_api-1.ndjson.gz").unlink()
    third = archive_backup.backup(land, dest, [])
    assert not third.ok
    assert [f.file for f in third.findings] == ["2021-07/graph_api-1.ndjson.gz"]
    assert not (dest / "landing" / "instagram" / "2021-07" / "graph_api-1.ndjson.gz").exists()


def test_backup_keeps_each_files_time_so_a_restore_puts_it_back_as_it_was(data, tmp_path):
    """A landing file lost, then copied back from the backup with `cp -p`: the same bytes
    and the same modification time as the file the collection wrote (found by `make year`:
    the backup gave each copy the time of the backup, so a restored file was another file
    for the landing sensor's fingerprint and for anyone comparing times)."""
    import os
    import shutil

    land = data / "landing" / "instagram"
    one = land / "2021-07" / "graph_api-1.ndjson.gz"
    written = 1_600_000_000_123_456_789
    os.utime(one, ns=(written, written))
    dest = tmp_path / "backup"
    assert archive_backup.backup(land, dest, []).ok
    copy = dest / "landing" / "instagram" / "2021-07" / "graph_api-1.ndjson.gz"
    assert copy.stat().st_mtime_ns == written
    before = (one.stat().st_size, one.stat().st_mtime_ns, one.read_bytes())
    one.unlink()
    assert "2021-07/graph_api-1.ndjson.gz" in named(check(data))      # missing: said
    shutil.copy2(copy, one)                                             # cp -p
    assert (one.stat().st_size, one.stat().st_mtime_ns, one.read_bytes()) == before
    assert check(data).ok


KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from dagster_project.archive import backup as archive_backup
    real_fsync, calls = os.fsync, [0]
    def fsync(fd):
        real_fsync(fd)
        calls[0] += 1
        if calls[0] == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)
    os.fsync = fsync
    archive_backup.backup(Path(sys.argv[1]), Path(sys.argv[2]), [])
    print("finished")
""")


def test_backup_killed_at_every_step_of_a_copy_is_completed_by_the_next(data, tmp_path):
    """SIGKILL a backup process at each fsync of its first files (temp file written, renamed,
    manifest written, manifest renamed…): the next backup completes it, and the copy
    verifies."""
    land = data / "landing" / "instagram"
    for k in range(1, 10):
        dest = tmp_path / f"b{k}"
        proc = subprocess.run([sys.executable, "-c", KILLER, str(land), str(dest), str(k)],
                              check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
        assert dest.exists()
        again = archive_backup.backup(land, dest, [])
        assert again.ok, [str(f) for f in again.findings]
        assert tree(dest / "landing" / "instagram") == tree(land)
        assert again.skipped + len(again.copied) == 4 and again.skipped < 4


def test_backup_command_then_rebuild_the_raw_tables_from_the_backup_alone(data, tmp_path):
    dest = tmp_path / "copy"
    proc = run_cli(["backup", "--to", str(dest)], data)
    assert proc.returncode == 0, proc.stderr
    assert "4 file(s) copied, 0 already there" in " ".join(proc.stderr.split())
    again = run_cli(["backup", "--to", str(dest)], data)
    assert "0 file(s) copied, 4 already there" in " ".join(again.stderr.split())
    assert run_cli(["backup", "--to", str(data / "inside")], data).returncode == 2
    load_months(dest / "warehouse.duckdb", dest / "landing" / "instagram", [JULY, AUGUST],
                now=NOW)
    cols = "month, file, line, handle, fetched_at, followers_count, media_returned"
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as a, \
            duckdb.connect(str(dest / "warehouse.duckdb"), read_only=True) as b:
        sql = f"select {cols} from raw.snapshots order by all"
        assert a.execute(sql).fetchall() == b.execute(sql).fetchall()
    assert archive.verify(dest / "landing" / "instagram", dest / "warehouse.duckdb").ok


def test_manifest_lines_that_cannot_be_read_are_named(data):
    manifest = data / "landing" / "instagram" / "2021-07" / landing.MANIFEST
    manifest.write_text(manifest.read_text() + "garbage line\n")
    problems = named(check(data))
    assert problems == {"2021-07/MANIFEST.tsv": "line 4 cannot be read: 'garbage line'"}
    # the manifest is never taken for a landing file
    assert [p.name for p in landing.iter_month_files(manifest.parent)] == [
        "graph_api-1.ndjson.gz", "graph_api-2.ndjson.gz"]


def test_the_demo_writes_only_gzip_listed_files_and_a_rerun_rewrites_nothing(tmp_path):
    from dagster_project.collect import demo
    from dagster_project.registry.accounts import read_registry
    from dagster_project.registry.territories import territory_ids
    from dagster_project.settings import SEEDS_DIR

    real, _ = read_registry(SEEDS_DIR / "instagram_accounts.csv", territory_ids())
    accounts = demo.build_registry(real)
    now = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)
    land = tmp_path / "landing"
    (land / "2021-07").mkdir(parents=True)
    (land / "2021-07" / "demo.ndjson").write_text("{}\n")      # a demo file of old
    landing.write_landing_file(land / "2021-07" / "graph_api-1.ndjson.gz",
                               [snap("a", "2021-07-02T10:00:00Z")], recorded_by="graph_api")
    result = demo.simulate(accounts, [JULY, AUGUST], land, now=now)
    names = sorted(str(p.relative_to(land)) for p in land.rglob("*") if p.is_file())
    assert names == ["2021-07/MANIFEST.tsv", "2021-07/demo.ndjson.gz",
                     "2021-07/graph_api-1.ndjson.gz", "2021-08/MANIFEST.tsv",
                     "2021-08/demo.ndjson.gz"]
    listed = {k: landing.read_manifest(land / k)["demo.ndjson.gz"] for k in ("2021-07", "2021-08")}
    assert sum(e.lines for e in listed.values()) == result.snapshots
    for key, entry in listed.items():   # the counts the demo gives are the loader's counts
        now_on_disk = landing.describe(land / key / "demo.ndjson.gz")
        assert (now_on_disk.sha256, now_on_disk.bytes, now_on_disk.lines) == (
            entry.sha256, entry.bytes, entry.lines)
        assert entry.recorded_by == "demo"
    assert archive.verify(land).ok
    stat = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in land.rglob("*") if p.is_file()}
    demo.simulate(accounts, [JULY, AUGUST], land, now=now)
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in land.rglob("*")
            if p.is_file()} == stat                          # nothing rewritten
    # another registry: the demo replaces its own file (and its manifest line) only
    other = land / "2021-07" / "graph_api-1.ndjson.gz"
    before = other.read_bytes()
    demo.simulate(accounts[:50], [JULY], land, now=now)
    assert other.read_bytes() == before
    assert landing.read_manifest(land / "2021-07")["demo.ndjson.gz"] != listed["2021-07"]
    assert archive.verify(land).ok
