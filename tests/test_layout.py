"""The package's layout rules (CONTRIBUTING.md, "Where code goes"): few modules at the root,
no module over 600 lines, no function over 80, every test beside what it tests."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dagster_project"
TESTS = Path(__file__).resolve().parent
FOLDERS = {"defs", "collect", "load", "registry", "archive", "publish", "service", "cli"}


def test_the_root_holds_the_stage_folders_and_at_most_six_modules():
    modules = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert len(modules) <= 6, modules
    assert folders == FOLDERS, folders ^ FOLDERS


def test_no_module_over_600_lines_and_no_function_over_80():
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 600:
            too_long.append(f"{path.relative_to(PACKAGE)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > 80:
                    too_long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}(): "
                                    f"{length} lines")
    assert not too_long, "\n".join(too_long)


def test_tests_mirror_the_package():
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and p.name != "__pycache__"}
    expected = FOLDERS | {"dbt", "reliability", "support", "bench"}   # bench: make year
    assert folders == expected, folders ^ expected
