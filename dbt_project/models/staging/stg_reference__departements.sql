with source as (
    select * from read_csv('{{ seeds_path("departements.csv") }}', header = true, all_varchar = true)
)

select
    code as code_departement,
    name as departement_name,
    code_region,
from source
