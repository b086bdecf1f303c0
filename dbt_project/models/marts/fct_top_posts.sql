{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_month_range() }}",
) }}
-- The month's best posts per category: posts of the reference window of ranked accounts,
-- by engagement (interactions ÷ followers) desc, interactions desc, media_id; top 10 kept.
-- A post whose likes are hidden has no interaction count: it cannot be placed, it is left out.
with rankings as (
    select * from {{ ref('fct_monthly_rankings') }}
    where month between {{ month_from() }} and {{ month_to() }}
),

media as (
    select * from {{ ref('stg_raw__media') }}
    where month between {{ month_from() }} and {{ month_to() }}
),

-- Same window as the KPIs: posts returned with the reference snapshot, posted in
-- [snapshot_at - 30 days, snapshot_at].
posts as (
    select
        r.month,
        r.category,
        r.territory_id,
        r.handle,
        m.media_id,
        m.posted_at,
        m.media_type,
        m.media_product_type,
        m.like_count,
        m.comments_count,
        m.interactions,
        case when r.followers > 0 then m.interactions / r.followers end as engagement,
        r.followers,
        m.view_count,
        m.permalink,
        r.is_demo,
    from rankings r
    join media m
        on m.month = r.month
        and m.handle = r.handle
        and m.fetched_at = r.snapshot_at
        and m.posted_at between r.snapshot_at - interval 30 days and r.snapshot_at
    where m.interactions is not null
),

ranked as (
    select
        *,
        row_number() over (
            partition by month, category
            order by engagement desc nulls last, interactions desc, media_id
        ) as post_rank,
    from posts
)

select
    ---------- keys
    month,
    category,
    post_rank,
    territory_id,
    handle,
    media_id,
    ---------- the post
    posted_at,
    media_type,
    like_count,
    comments_count,
    interactions,
    engagement,
    followers,
    media_product_type,
    view_count,
    permalink,
    is_demo,
from ranked
where post_rank <= 10
order by month, category, post_rank
