{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_month_range() }}",
) }}
-- One row per (month, territory) whose account has a reference snapshot that month.
select
    month,
    territory_id,
    handle,
    category,
    snapshot_at,
    followers,
    follows,
    media_count,
    posts_30d,
    posts_likes_hidden_30d,
    posts_per_day,
    interactions_30d,
    engagement_rate,
    reach,
    follower_ratio,
    followers_growth,
    followers_growth_rate,
    ig_user_id,
    account_changed,
    is_ranked,
    source,
    is_demo,
from {{ ref('int_account_kpis') }}
where month between {{ month_from() }} and {{ month_to() }}
order by month, territory_id
