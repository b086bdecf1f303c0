with source as (
    select * from read_csv('{{ seeds_path("communes.csv") }}', header = true, all_varchar = true)
)

select
    code as code_commune,
    name as commune_name,
    code_departement,
    code_region,
    zone,
    cast(nullif(population, '') as bigint) as population,
    nullif(epci_siren, '') as epci_siren,
from source
