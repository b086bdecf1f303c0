with source as (
    select * from {{ reference_csv("communes") }}
)

select
    vintage,
    code as code_commune,
    name as commune_name,
    code_departement,
    code_region,
    zone,
    cast(nullif(population, '') as bigint) as population,
    nullif(epci_siren, '') as epci_siren,
from source
