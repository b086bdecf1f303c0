"""Every SQL block of docs/warehouse.md runs against a demo warehouse and returns rows."""
import re

import duckdb
import pytest
from pipeline_support import ROOT

pytestmark = pytest.mark.slow
GUIDE = (ROOT / "docs" / "warehouse.md").read_text(encoding="utf-8")
QUERIES = re.findall(r"```sql\n(.*?)```", GUIDE, flags=re.DOTALL)
MAY_BE_EMPTY = {"q10", "q12"}  # no new entry in a Top this month / demo data has no bad line


def test_guide_has_eleven_questions():
    assert len(re.findall(r"^### \d+\. ", GUIDE, flags=re.MULTILINE)) == 11
    assert len(QUERIES) == 12


@pytest.mark.parametrize("qid, sql", [(f"q{i + 1}", q) for i, q in enumerate(QUERIES)],
                         ids=[f"q{i + 1}" for i in range(len(QUERIES))])
def test_query_runs(demo_run, qid, sql):
    with duckdb.connect(str(demo_run / "published" / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(sql).fetchall()
    if qid not in MAY_BE_EMPTY:
        assert rows, "the query returned no row on the demo warehouse"
