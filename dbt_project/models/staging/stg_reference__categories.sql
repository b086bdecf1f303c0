with source as (
    select * from {{ source('reference', 'categories') }}
)

select
    category,
    label,
    cast(top_n as integer) as top_n,
    cast(sort_order as integer) as sort_order,
from source
