"""The CSV exports as DuckDB SQL: every cell formatted, every record quoted and every file
assembled by the database (`string_agg` in file order), so that three queries return the
text of a range of months' files and Python only writes them.

The rules are those of `publish/formatting.py` (the report and the site use them in
Python) and of Python's csv module (`QUOTE_MINIMAL`), written once more in SQL;
`tests/publish/exports/test_exports_sql.py` holds each rule against its Python twin on the
same values:
- a text cell starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'` (formula guard);
- decimals with fixed places (`printf`, the C formatting Python's `f"{x:.2f}"` also uses),
  never `-0.00`, the dialect's decimal separator; integers as they are;
- the movement of a rank: `▲ 3`, `▼ 2`, `stable`, `nouveau` (`formatting.evolution`);
- a cell holding the separator, a `"`, CR or LF is quoted and its `"` doubled; a missing
  value is an empty cell; records are separated by CRLF.

Why not `COPY … TO … (PARTITION_BY …)`: it writes the same bytes (tried), but DuckDB's
partitioned writer costs ~0.6 ms a file (thread hand-offs), more than Python's
`open`/`write` (~0.05 ms): the demo's 14 000 small files took longer than with csv.writer.
"""
from __future__ import annotations

import datetime as dt

from dagster_project.publish.exports.areas import KINDS
from dagster_project.publish.exports.texts import ALERT_WORDING, HIDDEN
from dagster_project.publish.formatting import FORMULA_PREFIXES, STABLE

DEMO, REAL = "démo", "réelles"
IN_FORCE = "between t.valid_from and coalesce(t.valid_to, date '9999-12-01')"
QUOTE = '"'


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


# ---------------------------------------------------------------- cells

def text_cell(expr: str) -> str:
    """`formatting.neutralise` (NULL stays NULL: an empty cell)."""
    starts = ", ".join(str(ord(p)) for p in FORMULA_PREFIXES)
    return f"case when ord({expr}) in ({starts}) then {literal(chr(39))} || {expr} else {expr} end"


def int_cell(expr: str) -> str:
    return f"cast({expr} as varchar)"


def decimal_cell(expr: str, places: int, decimal: str, scale: int = 1) -> str:
    """`formatting.fmt_decimal`: fixed places, no `-0.00`, the dialect's separator (the
    same digits below 1e20: larger doubles are printed differently by C and Python)."""
    value = f"({expr}) * {scale}" if scale != 1 else expr
    text = f"regexp_replace(printf('%.{places}f', {value}), '^-(0\\.0+)$', '\\1')"
    return text if decimal == "." else f"replace({text}, '.', {literal(decimal)})"


def movement(change: str) -> str:
    """`formatting.evolution` of a rank change that is not a new entry."""
    return (f"case when {change} > 0 then '▲ ' || {change} "
            f"when {change} < 0 then '▼ ' || (-{change}) "
            f"when {change} = 0 then {literal(STABLE)} end")


def demo_cell(expr: str) -> str:
    return f"case when {expr} then {literal(DEMO)} else {literal(REAL)} end"


def code_expr(territory_id: str, code: str) -> str:
    """`formatting.territory_code`: the INSEE code, else the id after its first ':'."""
    return (f"coalesce(nullif({code}, ''), case when strpos({territory_id}, ':') > 0 "
            f"then substr({territory_id}, strpos({territory_id}, ':') + 1) "
            f"else {territory_id} end)")


def category_cell(label: str, category: str) -> str:
    """A category's name in a file: its label, else its key."""
    return text_cell(f"coalesce(nullif({label}, ''), {category})")


def kpi_cells(decimal: str) -> list[str]:
    """abonnés … données: the cells every ranked row ends with (`KPI_HEADERS`)."""
    return [int_cell("r.followers"), int_cell("r.followers_growth"),
            (f"case when r.engagement_hidden then {literal(HIDDEN)} "
             f"else {decimal_cell('r.engagement_rate', 2, decimal, 100)} end"),
            decimal_cell("r.posts_per_day", 2, decimal),
            decimal_cell("r.reach", 3, decimal, 100),
            decimal_cell("r.score", 2, decimal),
            demo_cell("r.is_demo")]


# ---------------------------------------------------------------- records and files

def csv_record(cells: list[str], delimiter: str) -> str:
    """One record, as csv.writer(quoting=QUOTE_MINIMAL) writes it (without its CRLF)."""
    def field(cell: str) -> str:
        special = " or ".join(f"contains({cell}, {ch})" for ch in
                              (literal(delimiter), literal(QUOTE), "chr(13)", "chr(10)"))
        return (f"case when {special} then {literal(QUOTE)} || "
                f"replace({cell}, {literal(QUOTE)}, {literal(QUOTE * 2)}) || {literal(QUOTE)} "
                f"else coalesce({cell}, '') end")
    return f" || {literal(delimiter)} || ".join(field(c) for c in cells)


def files_query(select: str, order: str, cells: int, delimiter: str) -> str:
    """Each file's records as one text (`body`), by month `m` and `file` (its path in the
    month's folder): `select` gives `m`, `file`, the cells `c00`… and the columns `order`
    sorts a file's records by."""
    record = csv_record([f"c{i:02d}" for i in range(cells)], delimiter)
    return (f"select m, file, string_agg({record}, chr(13) || chr(10) order by {order}) "
            f"as body\nfrom ({select})\ngroup by m, file")


def months_in(expr: str) -> str:
    """`expr` is one of the months of the parameters (`month_parameters`)."""
    return f"{expr} between $first and $last and list_contains($months, {expr})"


def month_parameters(months: list[dt.date]) -> dict[str, object]:
    return {"first": min(months), "last": max(months), "months": list(months)}


RANKED_FROM = f"""
    from marts.fct_monthly_rankings r
    left join marts.dim_territories t on t.territory_id = r.territory_id and r.month {IN_FORCE}
    left join marts.dim_categories c on c.category = r.category"""


def _select(keys: list[str], cells: list[str], rest: str) -> str:
    columns = keys + [f"{cell} as c{i:02d}" for i, cell in enumerate(cells)]
    return "select " + ",\n       ".join(columns) + rest


def ranking_files(decimal: str, delimiter: str) -> str:
    """The Top N of every category: `<category>.csv`, by rank."""
    cells = ["cast(r.rank as varchar)",
             f"case when r.is_new_entry then 'nouveau' else {movement('r.rank_change')} end",
             text_cell("r.territory_name"), text_cell(code_expr("r.territory_id", "t.code")),
             text_cell("r.departement_name"), text_cell("r.region_name"),
             text_cell("r.handle"), *kpi_cells(decimal)]
    select = _select(["strftime(r.month, '%Y-%m') as m", "r.category || '.csv' as file",
                      "r.rank as o1"], cells,
                     f"{RANKED_FROM}\n    where r.in_top_n and {months_in('r.month')}")
    return files_query(select, "o1", len(cells), delimiter)


def area_files(decimal: str, delimiter: str) -> str:
    """Every ranked territory of each département and région, all categories
    (`departements/<code>.csv`, `regions/<code>.csv`): in the categories' order, then by
    national rank."""
    parts = []
    for folder, code, _name, local, change in KINDS.values():
        cells = [category_cell("c.label", "r.category"),
                 "cast(r.rank as varchar)",
                 "case when r.in_top_n then 'oui' else 'non' end",
                 int_cell(f"r.{local}"),
                 (f"case when r.{local} is null then null when r.{change} is null "
                  f"then 'nouveau' else {movement(f'r.{change}')} end"),
                 text_cell("r.territory_name"),
                 text_cell(code_expr("r.territory_id", "t.code")),
                 text_cell("r.departement_name"), text_cell("r.handle"), *kpi_cells(decimal)]
        parts.append(_select(
            ["strftime(r.month, '%Y-%m') as m",
             f"{literal(folder + '/')} || r.{code} || '.csv' as file",
             "c.sort_order as o1", "r.category as o2", "r.rank as o3"], cells,
            f"{RANKED_FROM}\n    where r.{code} is not null and {months_in('r.month')}"))
    return files_query("\n  union all\n".join(parts), "o1 nulls last, o2, o3", len(cells),
                       delimiter)


def alert_files(delimiter: str) -> str:
    """The accounts not ranked: `alertes.csv`, in the categories' order, then by name."""
    wording = " ".join(f"when {literal(k)} then {literal(v)}" for k, v in ALERT_WORDING.items())
    name = "coalesce(a.territory_name, t.name)"
    category = "coalesce(a.category, t.category)"
    cells = [text_cell(name), text_cell(code_expr("a.territory_id", "t.code")),
             category_cell("c.label", category), text_cell("a.handle"),
             text_cell(f"case a.alert {wording} else a.alert end"), text_cell("a.detail_fr"),
             "strftime(a.last_ranked_month, '%Y-%m')", int_cell("a.last_rank"),
             demo_cell("coalesce(a.is_demo, false)")]
    select = _select(["strftime(a.month, '%Y-%m') as m", "'alertes.csv' as file",
                      "c.sort_order as o1", f"{name} as o2", "a.territory_id as o3",
                      "a.alert as o4", "a.handle as o5"], cells, f"""
    from marts.account_alerts a
    left join marts.dim_territories t on t.territory_id = a.territory_id and a.month {IN_FORCE}
    left join marts.dim_categories c on c.category = {category}
    where {months_in('a.month')}""")
    return files_query(select, "o1 nulls last, o2, o3, o4, o5", len(cells), delimiter)
