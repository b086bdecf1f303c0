"""dagster_project.archive.landing: month folders, atomic NDJSON writes, listing."""
from __future__ import annotations

import datetime as dt
import gzip

import pytest

from dagster_project.archive.landing import iter_month_files, month_dir, write_ndjson_atomic


def test_month_dir(tmp_path):
    assert month_dir(tmp_path, dt.date(2021, 7, 1)) == tmp_path / "2021-07"
    assert month_dir(str(tmp_path), dt.date(2017, 10, 31)) == tmp_path / "2017-10"


def test_write_ndjson_atomic(tmp_path):
    target = tmp_path / "2021-07" / "a.ndjson"
    write_ndjson_atomic(target, ['{"a":1}', '{"b":2}\n'])
    assert target.read_text() == '{"a":1}\n{"b":2}\n'
    write_ndjson_atomic(target, ['{"c":3}'])  # default: replace
    assert target.read_text() == '{"c":3}\n'
    with pytest.raises(FileExistsError):
        write_ndjson_atomic(target, ['{"d":4}'], exclusive=True)
    assert target.read_text() == '{"c":3}\n'
    write_ndjson_atomic(tmp_path / "2021-07" / "b.ndjson", [], exclusive=True)
    assert (tmp_path / "2021-07" / "b.ndjson").read_text() == ""
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_iter_month_files(tmp_path):
    assert iter_month_files(tmp_path / "missing") == []
    folder = tmp_path / "2021-07"
    folder.mkdir()
    (folder / "b.ndjson").write_text("")
    with gzip.open(folder / "a.ndjson.gz", "wt") as fh:
        fh.write("{}\n")
    (folder / "c.json").write_text("")
    (folder / ".x.ndjson.123.tmp").write_text("")
    (folder / "sub.ndjson").mkdir()
    assert [p.name for p in iter_month_files(folder)] == ["a.ndjson.gz", "b.ndjson"]
