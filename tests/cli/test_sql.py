"""`observatoire sql` on the demo run's published copy: a table, CSV and JSON with the rows
DuckDB gives; errors that name what does not exist; nothing written; and every example of
README.md and docs/warehouse.md that calls it runs as written."""
from __future__ import annotations

import csv
import io
import json
import re
import subprocess

import duckdb
import pytest
from pipeline_support import BIN, ROOT, project_env, run_cli

pytestmark = pytest.mark.slow
QUERY = """select rank, territory_name, round(score, 2) as score, month
           from marts.fct_monthly_rankings
           where month = '2021-07-01' and category = 'departement' order by rank limit 5"""
DOCS = {name: (ROOT / name).read_text(encoding="utf-8")
        for name in ("README.md", "docs/warehouse.md")}


def expected(demo_run, query: str = QUERY) -> list[tuple]:
    with duckdb.connect(str(demo_run / "published" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(query).fetchall()


def test_a_table_on_a_terminal_csv_and_json_for_pipes(demo_run):
    rows = expected(demo_run)
    assert len(rows) == 5
    table = run_cli(["sql", QUERY], demo_run)
    assert table.returncode == 0, table.stderr
    assert rows[0][1] in table.stdout and "territory_name" in table.stdout
    assert table.stdout.rstrip().endswith("5 rows")

    as_csv = run_cli(["sql", "--csv", QUERY], demo_run)
    assert as_csv.returncode == 0, as_csv.stderr
    records = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert records[0] == ["rank", "territory_name", "score", "month"]
    assert records[1:] == [[str(r), n, str(s), m.isoformat()] for r, n, s, m in rows]

    as_json = run_cli(["sql", "--json", QUERY], demo_run)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == [
        {"rank": r, "territory_name": n, "score": float(s), "month": m.isoformat()}
        for r, n, s, m in rows]


def test_the_query_from_standard_input(demo_run):
    proc = subprocess.run([str(BIN / "observatoire"), "sql", "--csv"], input=QUERY, cwd=ROOT,
                          env=project_env(demo_run), capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 6


@pytest.mark.parametrize("query, named", [
    ("select * from marts.fct_monthly_ranking", "fct_monthly_ranking"),
    ("select scor from marts.fct_monthly_rankings", '"scor"'),
    ("selec 1", "selec"),
])
def test_an_error_names_what_does_not_exist(demo_run, query, named):
    proc = run_cli(["sql", query], demo_run)
    assert proc.returncode == 1 and proc.stdout == ""
    message = " ".join(proc.stderr.split())
    assert named in message and "Traceback" not in message, message


def test_nothing_is_written(demo_run):
    before = expected(demo_run, "select count(*) from marts.dim_categories")
    proc = run_cli(["sql", "delete from marts.dim_categories"], demo_run)
    assert proc.returncode == 1 and "read-only" in " ".join(proc.stderr.split())
    assert expected(demo_run, "select count(*) from marts.dim_categories") == before != [(0,)]


def sql_examples() -> list[tuple[str, str]]:
    """The shell blocks of the docs that call `observatoire sql`."""
    return [(name, block) for name, text in DOCS.items()
            for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)
            if ".venv/bin/observatoire sql" in block]


def test_the_docs_show_observatoire_sql_and_the_duckdb_of_the_lock():
    assert {name for name, _ in sql_examples()} == set(DOCS)
    versions = set(re.findall(r"DUCKDB_VERSION=([\d.]+)|cli/([\d.]+)/duckdb|\(DuckDB ([\d.]+)",
                              DOCS["docs/warehouse.md"]))
    assert {v for found in versions for v in found if v} == {duckdb.__version__}


@pytest.mark.parametrize("name, block", sql_examples(),
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(sql_examples())])
def test_every_documented_example_runs_as_written(demo_run, tmp_path, name, block):
    script = block.replace(".venv/bin/observatoire", str(BIN / "observatoire"))
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                          env=project_env(demo_run), capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() or list(tmp_path.iterdir()), "the example printed nothing"
    for written in tmp_path.iterdir():
        assert written.read_text(encoding="utf-8").count("\n") > 1, written
