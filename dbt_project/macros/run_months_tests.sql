{#-
  Data tests check the months of the run, not the whole history: every test gets
  `where: run_months` (dbt_project.yml), and this override of dbt's get_where_subquery
  turns it into `month between <first> and <last month of the run>` on relations that have
  a `month` column (the marts, staging and intermediate models). Relations without one
  (dim_territories, dim_categories, int_territories) are tested whole: they do not grow
  with history. A full refresh runs over every month, so it tests everything.
  Any other `where` given to a test is applied as dbt does by default.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where == 'run_months' -%}
        {%- set columns = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
        {%- set where = ('month between ' ~ month_from() ~ ' and ' ~ month_to()) if 'month' in columns else '' -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
