-- Régions of metropolitan France and the DROM, one row per (région, vintage).
with source as (
    select * from {{ reference_csv("regions") }}
)

select
    vintage,
    code as code_region,
    name as region_name,
from source
