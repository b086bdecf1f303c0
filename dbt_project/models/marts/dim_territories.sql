-- One row per territory of the reference (COG 2026), with its ranking category.
select
    territory_id,
    kind,
    code,
    name,
    category,
    population,
    code_departement,
    code_region,
from {{ ref('int_territories') }}
order by territory_id
