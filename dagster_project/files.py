"""Files replaced atomically: a reader sees the old file or the new one, never half of one.

Every file the project writes goes through a temporary name in the destination's folder,
made readable by all, renamed over the destination when it is complete, removed if writing
fails. `durable=True` also fsyncs the file and its folder (the landing archive, the
registry, backups: files that must survive a power cut); `exclusive=True` never replaces an
existing file (FileExistsError). A whole folder (a month's exports) is swapped in by
`replace_dir_atomically`.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

FILE_MODE, DIR_MODE = 0o644, 0o755      # whatever the umask; mkdtemp would leave 0700


def temp_name(path: Path) -> Path:
    """A hidden name beside `path` that no other writer uses at the same time (process and
    thread in the name): a reader listing the folder skips it, a rename publishes it."""
    return path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")


@contextlib.contextmanager
def atomic_path(path: Path | str, *, durable: bool = False,
                exclusive: bool = False) -> Iterator[Path]:
    """A temporary path beside `path`, for writers that take a file name (DuckDB `COPY`, a
    copy): it replaces `path` when the block ends, and is removed if the block raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        if durable:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        if exclusive:
            link_exclusive(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_file(path: Path | str, mode: str = "wb", *, encoding: str | None = None,
                newline: str | None = None, durable: bool = False,
                exclusive: bool = False) -> Iterator[IO]:
    """`open(path, mode)` through a temporary file that replaces `path` when the block ends."""
    with atomic_path(path, durable=durable, exclusive=exclusive) as tmp, \
            open(tmp, mode, encoding=encoding, newline=newline) as fh:
        yield fh


def write_bytes_atomically(path: Path | str, data: bytes, *, durable: bool = False,
                           exclusive: bool = False) -> Path:
    """Replace `path` with `data`, atomically."""
    with atomic_file(path, durable=durable, exclusive=exclusive) as fh:
        fh.write(data)
    return Path(path)


def write_text_atomically(path: Path | str, text: str) -> Path:
    """Replace `path` with `text` (UTF-8), atomically."""
    return write_bytes_atomically(path, text.encode("utf-8"))


def link_exclusive(tmp: Path, path: Path) -> None:
    """Give the finished `tmp` the name `path`, unless `path` exists (FileExistsError)."""
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


def replace_dir_atomically(final: Path, build: Callable[[Path], None]) -> None:
    """Build a folder in a temp dir next to `final`, then swap it in.

    On any failure while building, the previous `final` is untouched and the temp dir is
    removed. The swap is rename(old → backup), rename(new → final), delete backup; if the
    second rename fails the backup is put back.
    """
    final = Path(final)
    parent = final.parent
    parent.mkdir(parents=True, exist_ok=True)
    with dir_lock(parent):
        _replace_dir_locked(final, build)


@contextlib.contextmanager
def dir_lock(folder: Path) -> Iterator[None]:
    """Serialise concurrent swaps in one folder: flock on the folder itself
    (POSIX; leaves no lock file behind). A no-op where flock is unavailable."""
    try:
        import fcntl
        fd = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):          # pragma: no cover - Windows
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)                        # closing releases the lock


def _replace_dir_locked(final: Path, build: Callable[[Path], None]) -> None:
    parent = final.parent
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=parent))
    try:
        os.chmod(tmp, DIR_MODE)
        build(tmp)
        _fsync_tree(tmp)
        backup = None
        if final.exists():
            backup = parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(final, backup)
        try:
            os.rename(tmp, final)
        except BaseException:
            if backup is not None:
                os.rename(backup, final)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
    fsync_dir(parent)


def _fsync_tree(folder: Path) -> None:
    for p in folder.iterdir():
        if p.is_dir():
            _fsync_tree(p)
        elif p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
    fsync_dir(folder)
