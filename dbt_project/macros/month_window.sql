{#-
  The month range being built comes from the environment (set by the Dagster asset from
  the partition window), not from --vars: env_var keeps dbt's partial parsing.
  Values are validated YYYY-MM-01 dates by the Python caller and cast here again.
-#}
{% macro month_from() -%}
    cast('{{ env_var("OBSERVATOIRE_MONTH_FROM", "2017-10-01") }}' as date)
{%- endmacro %}

{% macro month_to() -%}
    cast('{{ env_var("OBSERVATOIRE_MONTH_TO", "2999-12-01") }}' as date)
{%- endmacro %}

{#-
  The month being lived (first day): a month from it on is provisional. Set by the Python
  caller from its clock (OBSERVATOIRE_CURRENT_MONTH, beside the range), so that a rebuild is
  reproducible and a simulated calendar reaches dbt too; DuckDB's own date when dbt runs
  alone.
-#}
{% macro current_month() -%}
    {%- set month = env_var("OBSERVATOIRE_CURRENT_MONTH", "") -%}
    {%- if month -%} cast('{{ month }}' as date) {%- else -%} date_trunc('month', current_date)::date {%- endif -%}
{%- endmacro %}

{#- One month before the range: needed for previous_rank and followers growth. -#}
{% macro lookback_from() -%}
    ({{ month_from() }} - interval 1 month)::date
{%- endmacro %}

{#- Incremental marts replace exactly the months of the range (delete, then insert). -#}
{% macro delete_month_range() -%}
    {% if is_incremental() %}
        delete from {{ this }} where month between {{ month_from() }} and {{ month_to() }}
    {% endif %}
{%- endmacro %}

{#-
  One vintaged reference source (regions, departements, epci, communes: dbt sources on
  seeds/<name>.csv and seeds/vintages/*/<name>.csv, see _reference__sources.yml) with a
  `vintage` column: the current vintage is seeds/<name>.csv (the latest of
  seeds/vintages.csv), older ones are seeds/vintages/<year>/<name>.csv.
-#}
{% macro reference_csv(name) -%}
    (
        select
            * exclude (filename),
            coalesce(
                try_cast(regexp_extract(replace(filename, '\', '/'), 'vintages/([0-9]{4})/[^/]+$', 1) as integer),
                (select max(cast(vintage as integer)) from {{ source('reference', 'vintages') }})
            ) as vintage,
        from {{ source('reference', name) }}
    )
{%- endmacro %}
