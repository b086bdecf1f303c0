"""The exports' SQL (csv_sql.py) against its Python twins, on the same values, byte for
byte: the cells against formatting.py, the records and files against Python's csv module."""
from __future__ import annotations

import math
import random
import struct

import duckdb
import pytest

from dagster_project.publish.exports import csv_sql
from dagster_project.publish.exports.csv_export import DIALECTS, csv_bytes, file_bytes
from dagster_project.publish.formatting import evolution, fmt_decimal, neutralise, territory_code


@pytest.fixture(scope="module")
def con():
    with duckdb.connect() as c:
        yield c


def _doubles(n: int, seed: int) -> list[float]:
    """Awkward doubles: ties at every place, values rounding to ±0, random bit patterns
    (below 1e17: scaled ×100 they stay below 1e20, past which printf and Python write the
    digits of a double differently; a KPI is never near that)."""
    rng = random.Random(seed)
    out = [0.0, -0.0, 0.005, -0.005, 0.0049999, -0.0049999, 0.125, 2.675, 1.0005, -1.0005,
           1e-9, -1e-9, 123456789.125, 0.0005, -0.0005, 99.995, 1e17, -3.14159]
    out += [rng.choice([-1, 1]) * rng.randint(0, 10**6) / 1000 for _ in range(n)]
    out += [rng.uniform(-2, 2) for _ in range(n)]
    while len(out) < 3 * n:
        value = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        if not math.isnan(value) and abs(value) < 1e17:
            out.append(value)
    return out


@pytest.mark.parametrize(("places", "decimal", "scale"), [(2, ",", 100), (3, ",", 100),
                                                          (2, ".", 1), (3, ".", 100)])
def test_decimal_cell_equals_fmt_decimal(con, places, decimal, scale):
    values = _doubles(3_000, places * scale)
    got = con.execute(
        f"select {csv_sql.decimal_cell('v', places, decimal, scale)} "
        "from (select unnest($v) as v, generate_subscripts($v, 1) as i) order by i",
        {"v": values}).fetchall()
    want = [fmt_decimal(v, places, decimal, scale) for v in values]
    assert [r[0] for r in got] == want
    assert con.execute(f"select {csv_sql.decimal_cell('null::double', 2, ',')}").fetchone() \
        == (None,)


def test_text_cell_equals_neutralise(con):
    texts = ["", "=1+1", "+33", "-12", "@SUM(A1)", "\tx", "\rx", "\nx", " =x", "x=", "'=x",
             "Saint-Denis", "=\u0301", "é=", "🙂=", "stable", "▲ 3", "-", "=", "Côte-d'Or"]
    got = con.execute(
        f"select {csv_sql.text_cell('v')} "
        "from (select unnest($v) as v, generate_subscripts($v, 1) as i) order by i",
        {"v": texts}).fetchall()
    assert [r[0] for r in got] == [neutralise(t) for t in texts]
    assert con.execute(f"select {csv_sql.text_cell('null::varchar')}").fetchone() == (None,)


def test_movement_equals_evolution(con):
    changes = [-120, -1, 0, 1, 7, 3000]
    got = con.execute(f"select {csv_sql.movement('c')} from unnest($c) as t(c)",
                      {"c": changes}).fetchall()
    assert [r[0] for r in got] == [evolution(c, False) for c in changes]


def test_code_equals_territory_code(con):
    cases = [("commune:32013", "32013"), ("commune:32013", None), ("commune:32013", ""),
             ("epci:200066777", None), ("plain", None), ("a:b:c", None)]
    for territory_id, code in cases:
        got = con.execute(f"select {csv_sql.code_expr('$id', '$code::varchar')}",
                          {"id": territory_id, "code": code}).fetchone()[0]
        assert got == territory_code(territory_id, code)


def _fuzz_cells(n: int, seed: int) -> list[list[str | None]]:
    rng = random.Random(seed)
    alphabet = ["a", "é", " ", ";", ",", '"', "'", "\r", "\n", "\r\n", "=", "-", "\t", "#",
                "0", ".", "\\", "🙂", "\u00a0"]

    def cell() -> str | None:
        roll = rng.random()
        if roll < 0.1:
            return None
        if roll < 0.15:
            return ""
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6)))
    return [[cell(), cell(), cell()] for _ in range(n)]


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_files_query_writes_what_csv_writer_writes(con, dialect):
    """Quoting, separators, embedded CR/LF, empty and missing cells, record order, BOM and
    header: a file assembled by `files_query` is the bytes of Python's csv module."""
    spec = DIALECTS[dialect]
    rows = _fuzz_cells(3_000, len(dialect))
    header = ["rang", "taux d'engagement (%)", 'a "quoted" ; header']
    con.execute("create or replace temp table fuzz (seq integer, file varchar, a varchar, "
                "b varchar, c varchar)")
    con.executemany("insert into fuzz values (?, ?, ?, ?, ?)",
                    [(i, f"f{i % 3}.csv", *r) for i, r in enumerate(rows)])
    query = csv_sql.files_query("select '2026-01' as m, file, a as c00, b as c01, c as c02, "
                                "seq from fuzz", "seq desc", 3, spec.delimiter)
    got = {name: file_bytes(spec, header, body) for _m, name, body in con.execute(query).fetchall()}
    assert sorted(got) == ["f0.csv", "f1.csv", "f2.csv"]
    for part in range(3):
        want = csv_bytes(spec, header, [["" if c is None else c for c in r]
                                        for i, r in reversed(list(enumerate(rows)))
                                        if i % 3 == part])
        assert got[f"f{part}.csv"] == want, part
    assert file_bytes(spec, header, None) == csv_bytes(spec, header, [])
