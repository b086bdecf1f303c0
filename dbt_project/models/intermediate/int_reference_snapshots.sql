-- Per (month, registered account): the reference snapshot = the latest ok snapshot of the month.
with snapshots as (
    select * from {{ ref('stg_raw__snapshots') }}
),

accounts as (
    select * from {{ ref('stg_raw__accounts') }}
),

latest_ok as (
    select *
    from snapshots
    where status = 'ok'
    qualify row_number() over (
        partition by month, handle order by fetched_at desc, file desc, line desc
    ) = 1
)

select
    s.month,
    a.territory_id,
    s.handle,
    s.fetched_at,
    s.ig_user_id,
    a.registry_ig_user_id,
    s.followers,
    s.follows,
    s.media_count,
    s.source,
    s.is_demo,
from latest_ok s
join accounts a using (handle)
