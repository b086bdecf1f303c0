with source as (
    select * from read_csv('{{ seeds_path("categories.csv") }}', header = true, all_varchar = true)
)

select
    category,
    label,
    cast(top_n as integer) as top_n,
    cast(sort_order as integer) as sort_order,
from source
