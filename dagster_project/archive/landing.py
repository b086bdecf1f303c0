"""The landing archive: the one place that writes landing files and their manifests
(line format: docs/landing-format.md; the archive: docs/landing.md).

`<landing_dir>/<YYYY-MM>/*.ndjson[.gz]`: one JSON object per line. Every source writes
`.ndjson.gz`; the loader reads both forms. A landing file is written atomically (temp file
in the same folder, fsync, rename), never replaces another file, and is then listed in the
month folder's manifest `MANIFEST.tsv` (tab-separated, one header line):

    file    sha256    bytes    lines    recorded_at    recorded_by

`bytes` and `sha256` are those of the file as stored (compressed or not); `lines` counts its
records, as the loader counts them (blank lines do not count), or is `-` when the file is
unreadable (not gzip). `recorded_by` is the writer of the file (`graph_api`, `demo`) or
`loader` for a file placed by hand, listed when first loaded. The manifest is rewritten
atomically under a lock; lines are only ever added. Anyone can check a folder with
standard tools:

    tail -n +2 MANIFEST.tsv | awk -F'\\t' '{print $2 "  " $1}' | sha256sum -c
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import gzip
import hashlib
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dagster_project.files import (
    FILE_MODE,
    fsync_dir,
    link_exclusive,
    temp_name,
    write_bytes_atomically,
)
from dagster_project.months import month_key, parse_month

LANDING_PATTERNS = ("*.ndjson", "*.ndjson.gz")
MANIFEST = "MANIFEST.tsv"
MANIFEST_COLUMNS = ("file", "sha256", "bytes", "lines", "recorded_at", "recorded_by")
_BLOCK = 1 << 20


@dataclass(frozen=True)
class Entry:
    """One manifest line: what a landing file was when it was recorded."""
    file: str            # name inside the month folder
    sha256: str
    bytes: int
    lines: int | None    # None: unreadable (not valid gzip)
    recorded_at: str = ""
    recorded_by: str = ""

    def row(self) -> str:
        lines = "-" if self.lines is None else str(self.lines)
        return "\t".join((self.file, self.sha256, str(self.bytes), lines,
                          self.recorded_at, self.recorded_by))


def month_dir(landing_dir: Path | str, month: dt.date) -> Path:
    """landing_dir/"YYYY-MM" (not created)."""
    return Path(landing_dir) / month_key(month)


def is_landing_name(name: str) -> bool:
    return not name.startswith(".") and name.endswith((".ndjson", ".ndjson.gz"))


def iter_month_files(month_dir: Path | str) -> list[Path]:
    """The month's landing files (`*.ndjson` and `*.ndjson.gz`), sorted by name; [] if absent."""
    folder = Path(month_dir)
    if not folder.is_dir():
        return []
    files = {p for pattern in LANDING_PATTERNS for p in folder.glob(pattern)
             if p.is_file() and is_landing_name(p.name)}
    return sorted(files, key=lambda p: p.name)


def month_files(landing_dir: Path | str, month: dt.date) -> list[Path]:
    """The landing files of `month` under `landing_dir` (the one month listing)."""
    return iter_month_files(month_dir(landing_dir, month))


# ----------------------------------------------------------------------------- checksums

def landed_months(landing_dir: Path | str) -> list[dt.date]:
    """The months (first days) that have landing files, oldest first."""
    try:
        folders = list(Path(landing_dir).iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    months = []
    for folder in folders:
        try:
            month = parse_month(folder.name)
        except ValueError:
            continue
        if iter_month_files(folder):
            months.append(month)
    return sorted(months)


def _count_lines(chunks: Iterable[bytes]) -> int:
    """Records as the loader counts them: lines split on \\n, blank ones (at most 16
    characters of space, tab or CR) skipped."""
    n, tail = 0, b""
    for chunk in chunks:
        parts = (tail + chunk).split(b"\n")
        tail = parts.pop()
        n += sum(1 for p in parts if not (len(p) <= 16 and not p.strip(b" \t\r")))
    if tail and not (len(tail) <= 16 and not tail.strip(b" \t\r")):
        n += 1
    return n


def _blocks(fh) -> Iterable[bytes]:
    while block := fh.read(_BLOCK):
        yield block


def describe(path: Path | str, *, recorded_by: str = "", lines: bool = True,
             name: str | None = None) -> Entry:
    """The manifest entry of a file as it is now (SHA-256, size and record count);
    `name`: the landing name of a temp file (it says whether it is gzip)."""
    path = Path(path)
    name = name or path.name
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        size = 0
        for block in _blocks(fh):
            digest.update(block)
            size += len(block)
    count: int | None = None
    if lines:
        try:
            if name.endswith(".gz"):
                with gzip.open(path, "rb") as fh:
                    count = _count_lines(_blocks(fh))
            else:
                with open(path, "rb") as fh:
                    count = _count_lines(_blocks(fh))
        except (OSError, EOFError, zlib.error):
            count = None
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Entry(name, digest.hexdigest(), size, count, now, recorded_by)


def sha256_of(path: Path | str) -> str:
    return describe(path, lines=False).sha256


# ----------------------------------------------------------------------------- manifests

def read_manifest(folder: Path | str) -> dict[str, Entry]:
    """The manifest of a month folder, file name → entry ({} when there is none).

    A line that cannot be parsed is ignored here; `verify` reports it."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return {}
    out: dict[str, Entry] = {}
    for raw in path.read_text(encoding="utf-8").splitlines()[1:]:
        parsed = parse_manifest_line(raw)
        if parsed is not None:
            out[parsed.file] = parsed
    return out


def parse_manifest_line(raw: str) -> Entry | None:
    cols = raw.split("\t")
    if len(cols) != len(MANIFEST_COLUMNS):
        return None
    name, sha, size, lines, at, by = cols
    if len(sha) != 64 or not size.isdigit() or not (lines == "-" or lines.isdigit()):
        return None
    return Entry(name, sha, int(size), None if lines == "-" else int(lines), at, by)


@contextlib.contextmanager
def _folder_lock(folder: Path):
    """An exclusive lock on the month folder itself (flock on its descriptor): two writers
    of the same manifest (a collector and a loader) take turns."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def record(folder: Path | str, entries: Iterable[Entry], *, replace: bool = False) -> None:
    """Add `entries` to the folder's manifest (atomically, under the folder lock).

    An entry whose file is already listed is left as listed, unless `replace` (the demo's
    own file, see collect/demo.py)."""
    folder = Path(folder)
    entries = list(entries)
    if not entries:
        return
    with _folder_lock(folder):
        path = folder / MANIFEST
        existing = path.read_text(encoding="utf-8").splitlines()[1:] if path.is_file() else []
        rows: dict[str, str] = {}
        for raw in existing:
            if not raw.strip():
                continue
            rows[raw.split("\t", 1)[0]] = raw   # unparsable lines are kept for verify to see
        changed = False
        for e in entries:
            if e.file not in rows or (replace and rows[e.file] != e.row()):
                rows[e.file] = e.row()
                changed = True
        if not changed:
            return
        text = "\t".join(MANIFEST_COLUMNS) + "\n" + "".join(
            rows[k] + "\n" for k in sorted(rows))
        write_bytes_atomically(path, text.encode("utf-8"), durable=True)


def forget(folder: Path | str, names: Iterable[str]) -> None:
    """Drop manifest lines (only for the demo's own superseded files)."""
    folder = Path(folder)
    names = set(names)
    path = folder / MANIFEST
    if not names or not path.is_file():
        return
    with _folder_lock(folder):
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [lines[0]] + [x for x in lines[1:] if x.split("\t", 1)[0] not in names]
        write_bytes_atomically(path, ("\n".join(kept) + "\n").encode("utf-8"),
                               durable=True)


# ----------------------------------------------------------------------------- writing

def write_landing_file(path: Path | str, lines: list[str], *, recorded_by: str,
                       exclusive: bool = True) -> Path:
    """Write `lines` (one JSON document each) gzip-compressed to `path` (`*.ndjson.gz`)
    atomically, never over an existing file (FileExistsError), and list it in the manifest."""
    path = Path(path)
    if not path.name.endswith(".ndjson.gz"):
        raise ValueError(f"landing files are written compressed (*.ndjson.gz), not {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        with open(tmp, "wb") as raw, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as fh:
            for line in lines:
                fh.write(line.rstrip("\n").encode("utf-8"))
                fh.write(b"\n")
        os.chmod(tmp, FILE_MODE)
        publish(tmp, path, recorded_by=recorded_by, exclusive=exclusive)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def publish(tmp: Path | str, path: Path | str, *, recorded_by: str, exclusive: bool = True,
            lines: int | None = None) -> Entry:
    """Move a finished temp file (same file system) to its landing name: fsync, rename
    (exclusive: FileExistsError if `path` exists), fsync the folder, then record it in the
    manifest. `lines`: the record count when the caller knows it (saves a decompression).
    With `exclusive=False` an existing file is replaced (the demo's own file only)."""
    tmp, path = Path(tmp), Path(path)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    entry = describe(tmp, recorded_by=recorded_by, lines=lines is None, name=path.name)
    if lines is not None:
        entry = dataclasses.replace(entry, lines=lines)
    if exclusive:
        link_exclusive(tmp, path)
    else:
        os.replace(tmp, path)
    fsync_dir(path.parent)
    record(path.parent, [entry], replace=not exclusive)
    return entry


def write_ndjson_atomic(path: Path | str, lines: list[str], *, exclusive: bool = False) -> Path:
    """Write `lines` (one JSON document each, without newline) to `path` atomically, plain
    text, without a manifest line (for files that are not landing files, and tests).

    With `exclusive=True` an existing `path` is never replaced: FileExistsError is raised.
    """
    data = "".join(line.rstrip("\n") + "\n" for line in lines).encode("utf-8")
    return write_bytes_atomically(path, data, durable=True, exclusive=exclusive)
