"""Landing-zone helpers shared by every source (docs/landing-format.md).

`<landing_dir>/<YYYY-MM>/*.ndjson[.gz]`: one JSON object per line. Files are written
atomically (temp file in the same folder, fsync, rename) so a reader never sees half a file.
"""
from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

from .months import month_key

LANDING_PATTERNS = ("*.ndjson", "*.ndjson.gz")


def month_dir(landing_dir: Path | str, month: dt.date) -> Path:
    """landing_dir/"YYYY-MM" (not created)."""
    return Path(landing_dir) / month_key(month)


def iter_month_files(month_dir: Path | str) -> list[Path]:
    """The month's landing files (`*.ndjson` and `*.ndjson.gz`), sorted by name; [] if absent."""
    folder = Path(month_dir)
    if not folder.is_dir():
        return []
    files = {p for pattern in LANDING_PATTERNS for p in folder.glob(pattern) if p.is_file()}
    return sorted(files, key=lambda p: p.name)


def write_ndjson_atomic(path: Path | str, lines: list[str], *, exclusive: bool = False) -> Path:
    """Write `lines` (one JSON document each, without newline) to `path` atomically.

    The data goes to a temp file in the same folder, is fsync'ed, then renamed over `path`.
    With `exclusive=True` an existing `path` is never replaced: FileExistsError is raised
    (and the temp file removed).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            for line in lines:
                fh.write(line.rstrip("\n"))
                fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            _link_exclusive(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def _link_exclusive(tmp: Path, path: Path) -> None:
    try:
        os.link(tmp, path)  # atomic; FileExistsError if path exists
    except FileExistsError:
        raise
    except OSError:  # file system without hard links: check, then rename
        if path.exists():
            raise FileExistsError(str(path)) from None
        os.replace(tmp, path)
        return
    tmp.unlink()


def fsync_dir(folder: Path) -> None:
    """fsync a folder so that a rename inside it is durable (best effort)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
