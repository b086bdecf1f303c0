with source as (
    select * from {{ source('reference', 'scoring_weights') }}
)

select
    kpi,
    cast(weight as double) as weight,
    description,
from source
