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

{% macro seeds_path(name) -%}
    {{ env_var("OBSERVATOIRE_SEEDS_DIR", "../seeds") }}/{{ name }}
{%- endmacro %}

{#-
  One reference file (regions.csv, departements.csv, epci.csv, communes.csv) over every
  vintage, with a `vintage` column: the current vintage is seeds/<name>, older ones are
  seeds/vintages/<year>/<name> (seeds/vintages.csv lists them).
-#}
{% macro reference_csv(name) -%}
    (
        select
            * exclude (filename),
            coalesce(
                try_cast(regexp_extract(replace(filename, '\', '/'), 'vintages/([0-9]{4})/[^/]+$', 1) as integer),
                (select max(cast(vintage as integer))
                 from read_csv('{{ seeds_path("vintages.csv") }}', header = true, all_varchar = true))
            ) as vintage,
        from read_csv(['{{ seeds_path(name) }}', '{{ seeds_path("vintages/*/" ~ name) }}'],
                      header = true, all_varchar = true, filename = true, union_by_name = true)
    )
{%- endmacro %}
