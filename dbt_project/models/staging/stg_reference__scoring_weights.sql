with source as (
    select * from read_csv('{{ seeds_path("scoring_weights.csv") }}', header = true, all_varchar = true)
)

select
    kpi,
    cast(weight as double) as weight,
    description,
from source
