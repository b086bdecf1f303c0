"""Every mart column has the type its documentation (dbt `data_type`) gives, and none is a
HUGEINT (a sum's type that many analysts' tools cannot read)."""
import duckdb
import pytest
import yaml
from pipeline_support import ROOT

pytestmark = pytest.mark.slow
MARTS_YML = ROOT / "dbt_project" / "models" / "marts" / "_marts.yml"


def documented_types() -> dict[tuple[str, str], str | None]:
    models = yaml.safe_load(MARTS_YML.read_text(encoding="utf-8"))["models"]
    return {(model["name"], col["name"]): col.get("data_type")
            for model in models for col in model.get("columns", [])}


def test_every_mart_column_has_its_documented_type(demo_run):
    with duckdb.connect(str(demo_run / "published" / "warehouse.duckdb"), read_only=True) as con:
        actual = {(t, c): d.lower() for t, c, d in con.execute(
            """select table_name, column_name, data_type from information_schema.columns
               where table_schema = 'marts'""").fetchall()}
    documented = documented_types()
    assert sorted(set(actual) - set(documented)) == [], "mart columns without documentation"
    assert sorted(set(documented) - set(actual)) == [], "documented columns not in the marts"
    assert [k for k, v in documented.items() if not v] == [], "documented without a data_type"
    assert {k: (documented[k], v) for k, v in actual.items() if documented[k] != v} == {}
    assert [k for k, v in actual.items() if v == "hugeint"] == []
