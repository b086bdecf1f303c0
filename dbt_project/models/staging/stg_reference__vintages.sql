-- The reference vintages (one per COG year) and the months each one is in force: from
-- January of its year (the first one also covers every earlier month, from 2017-10) to the
-- month before the next vintage (open-ended for the current one).
with source as (
    select * from {{ source('reference', 'vintages') }}
),

typed as (
    select cast(vintage as integer) as vintage, package_version, source as credit,
    from source
)

select
    vintage,
    package_version,
    credit,
    case
        when vintage = min(vintage) over () then date '2017-10-01'
        else make_date(vintage, 1, 1)
    end as valid_from,
    (lead(make_date(vintage, 1, 1)) over (order by vintage) - interval 1 month)::date as valid_to,
from typed
