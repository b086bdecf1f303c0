"""Test data built once per test session, whichever pytest-xdist worker asks for it first.

A `scope="session"` fixture runs once per worker: with `make test` (`-n 2`), twice, and the
two builds compete for the same two cores. `build_once` builds into the folder all the
workers of one session share (the parent of each worker's basetemp), under an exclusive
lock: the first worker to ask builds, the others wait for it and reuse the result.

What is built this way is shared by tests running at the same time in two processes: tests
only read it. A test that writes (reruns the pipeline, rebuilds the site, opens the
warehouse read-write, as dbt does) works on its own copy (`copy_data`).
"""
from __future__ import annotations

import fcntl
import os
import shutil
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest


def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's temporary folder common to every xdist worker (basetemp without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_once(tmp_path_factory: pytest.TempPathFactory, name: str,
               build: Callable[[Path], object]) -> Path:
    """The folder `<shared root>/<name>`, filled by `build(folder)` once per session.

    A build that failed is not retried by the next worker: its error is reported again."""
    root = shared_root(tmp_path_factory)
    folder, done, failed = root / name, root / f"{name}.done", root / f"{name}.failed"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)           # released when the file is closed
        if failed.exists():
            pytest.fail(f"building {name} failed in another worker:\n{failed.read_text()}",
                        pytrace=False)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            try:
                build(folder)
            except BaseException:
                failed.write_text(traceback.format_exc())
                raise
            done.touch()
    return folder


def copy_data(src: Path, dest: Path) -> Path:
    """A private copy of a shared data folder (symlinks kept: the published copy is one)."""
    shutil.copytree(src, dest, symlinks=True)
    return dest
