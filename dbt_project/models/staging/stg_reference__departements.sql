with source as (
    select * from {{ reference_csv("departements") }}
)

select
    vintage,
    code as code_departement,
    name as departement_name,
    code_region,
from source
