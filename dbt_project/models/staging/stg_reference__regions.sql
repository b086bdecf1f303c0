-- Régions of metropolitan France and the DROM (COG 2026).
with source as (
    select * from read_csv('{{ seeds_path("regions.csv") }}', header = true, all_varchar = true)
)

select
    code as code_region,
    name as region_name,
from source
