{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_month_range() }}",
) }}
-- Every ranked account per (month, category), with its rank movement (docs/methodologie.md).
with scored as (
    select * from {{ ref('int_scored_accounts') }}
),

territories as (
    select * from {{ ref('int_territories') }}
),

categories as (
    select * from {{ ref('stg_reference__categories') }}
),

final as (
    select
        ---------- keys
        s.month,
        s.category,
        s.rank,
        s.territory_id,
        t.name as territory_name,
        t.vintage,
        s.handle,
        ---------- score and KPIs
        s.score,
        s.engagement_rate,
        s.engagement_hidden,
        s.posts_30d,
        s.posts_likes_hidden_30d,
        s.reach,
        s.posts_per_day,
        s.followers,
        s.follower_ratio,
        s.followers_growth,
        s.followers_growth_rate,
        s.p_engagement_rate,
        s.p_reach,
        s.p_posts_per_day,
        s.p_followers,
        s.p_follower_ratio,
        ---------- movement (a change of account behind the handle starts a new history)
        case when s.account_changed then null else prev.rank end as previous_rank,
        case when s.account_changed then null else prev.rank - s.rank end as rank_change,
        prev.rank is null or coalesce(s.account_changed, false) as is_new_entry,
        coalesce(s.account_changed, false) as account_changed,
        s.ig_user_id,
        ---------- publication
        s.rank <= c.top_n as in_top_n,
        c.top_n,
        s.is_demo,
        s.month >= date_trunc('month', current_date) as is_provisional,
        s.snapshot_at,
        s.source,
    from scored s
    join territories t
        on t.territory_id = s.territory_id
        and s.month between t.valid_from and coalesce(t.valid_to, date '9999-12-01')
    join categories c on c.category = s.category
    left join scored prev
        on prev.territory_id = s.territory_id
        and prev.category = s.category
        and prev.month = (s.month - interval 1 month)::date
    where s.month between {{ month_from() }} and {{ month_to() }}
)

select * from final
order by month, category, rank
