"""Files replaced atomically: a reader sees the old file or the new one, never half of one.

Every file the project writes goes through a temporary name in the destination's folder
(readable by all: mkstemp would make it private), renamed over the destination when it is
complete, removed if writing fails. `durable=True` also fsyncs the file and its folder (the
landing archive, the registry, backups: files that must survive a power cut);
`exclusive=True` never replaces an existing file (FileExistsError).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

FILE_MODE = 0o644


@contextlib.contextmanager
def atomic_path(path: Path | str, *, durable: bool = False,
                exclusive: bool = False) -> Iterator[Path]:
    """A temporary path beside `path`, for writers that take a file name (DuckDB `COPY`, a
    copy): it replaces `path` when the block ends, and is removed if the block raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
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
