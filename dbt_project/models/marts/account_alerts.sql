{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_month_range() }}",
) }}
-- Registered accounts whose month went wrong: latest snapshot not ok, or no snapshot at all.
with snapshots as (
    select * from {{ ref('stg_raw__snapshots') }}
    where month between {{ month_from() }} and {{ month_to() }}
),

accounts as (
    select * from {{ ref('stg_raw__accounts') }}
),

reference as (
    select * from {{ ref('int_reference_snapshots') }}
),

kpis as (
    select * from {{ ref('int_account_kpis') }}
    where month between {{ month_from() }} and {{ month_to() }}
),

-- Months that were collected at all: an uncollected month is not an alert for everyone.
collected_months as (
    select distinct month from snapshots
),

-- An account is expected from the first month it was ever seen (whole history: one
-- aggregate over raw snapshots, cheap).
first_seen as (
    select handle, min(month) as first_month, arg_min(source, fetched_at) as first_source,
    from {{ source('raw', 'snapshots') }}
    group by handle
),

latest as (
    select *
    from snapshots
    qualify row_number() over (
        partition by month, handle order by fetched_at desc, file desc, line desc
    ) = 1
),

expected as (
    select m.month, a.handle, a.territory_id, f.first_source,
    from accounts a
    cross join collected_months m
    join first_seen f using (handle)
    where m.month >= f.first_month
),

alerts as (
    select
        e.month,
        e.territory_id,
        e.handle,
        case when l.handle is null then 'no_snapshot' else 'unavailable' end as alert,
        case
            when l.handle is null then 'no snapshot collected this month'
            else 'latest snapshot ' || strftime(l.fetched_at, '%Y-%m-%d %H:%M UTC')
                || ' has status ' || l.status
                || coalesce(' (error ' || l.error_code || ': ' || l.error_message || ')', '')
                || case
                    when r.handle is not null
                        then '; ranked on the earlier snapshot of '
                            || strftime(r.fetched_at, '%Y-%m-%d %H:%M UTC')
                    else '; not ranked'
                end
        end as detail,
        l.status as latest_status,
        r.handle is not null as ranked_on_earlier_snapshot,
        coalesce(l.is_demo, e.first_source = 'demo') as is_demo,
    from expected e
    left join latest l using (month, handle)
    left join reference r using (month, handle)
    where l.handle is null or l.status <> 'ok'

    union all

    -- the id behind the handle changed: still ranked, history not chained
    select
        month,
        territory_id,
        handle,
        'account_changed' as alert,
        account_changed_detail as detail,
        null as latest_status,
        null as ranked_on_earlier_snapshot,
        is_demo,
    from kpis
    where account_changed
),

territories as (
    select * from {{ ref('int_territories') }}
),

rankings as (
    select month, territory_id, rank from {{ ref('fct_monthly_rankings') }}
),

final as (
    select
        a.month,
        a.territory_id,
        t.name as territory_name,
        t.category,
        a.handle,
        a.alert,
        a.detail,
        a.latest_status,
        a.ranked_on_earlier_snapshot,
        r.month as last_ranked_month,
        r.rank as last_rank,
        a.is_demo,
    from alerts a
    join territories t using (territory_id)
    asof left join rankings r
        on r.territory_id = a.territory_id and a.month > r.month
)

select * from final
order by month, territory_id, alert
