with source as (
    select * from read_csv('{{ seeds_path("epci.csv") }}', header = true, all_varchar = true)
)

select
    siren,
    name as epci_name,
    type as epci_type,
    cast(population as bigint) as population,
from source
