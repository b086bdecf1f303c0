with source as (
    select * from {{ reference_csv("epci") }}
)

select
    vintage,
    siren,
    name as epci_name,
    type as epci_type,
    cast(population as bigint) as population,
from source
