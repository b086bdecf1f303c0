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

-- Each ranked account of the range (and the month before it) with its territory of the
-- vintage in force, its département and région (an EPCI's: those of its most populous
-- commune), and its rank among the same category's territories of that area, in the
-- national order (régions have no région rank, départements no département rank).
located as (
    select
        s.* exclude (vintage),
        t.name as territory_name,
        t.vintage,
        t.code_departement,
        t.code_region,
        case when s.category not in ('region', 'departement') and t.code_departement is not null
            then row_number() over (partition by s.month, s.category, t.code_departement order by s.rank)
        end as rank_in_departement,
        case when s.category <> 'region' and t.code_region is not null
            then row_number() over (partition by s.month, s.category, t.code_region order by s.rank)
        end as rank_in_region,
    from scored s
    join territories t
        on t.territory_id = s.territory_id
        and s.month between t.valid_from and coalesce(t.valid_to, date '9999-12-01')
    where s.month between {{ lookback_from() }} and {{ month_to() }}
),

final as (
    select
        ---------- keys
        s.month,
        s.category,
        s.rank,
        s.territory_id,
        s.territory_name,
        s.vintage,
        s.handle,
        ---------- where it is (vintage in force) and its local ranks
        s.code_departement,
        d.name as departement_name,
        s.code_region,
        r.name as region_name,
        s.rank_in_departement,
        s.rank_in_region,
        case when not coalesce(s.account_changed, false) and prev.code_departement = s.code_departement
            then prev.rank_in_departement - s.rank_in_departement end as rank_in_departement_change,
        case when not coalesce(s.account_changed, false) and prev.code_region = s.code_region
            then prev.rank_in_region - s.rank_in_region end as rank_in_region_change,
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
        s.month >= {{ current_month() }} as is_provisional,
        s.snapshot_at,
        s.source,
    from located s
    join categories c on c.category = s.category
    left join territories d
        on d.territory_id = 'departement:' || s.code_departement and d.vintage = s.vintage
    left join territories r
        on r.territory_id = 'region:' || s.code_region and r.vintage = s.vintage
    left join located prev
        on prev.territory_id = s.territory_id
        and prev.category = s.category
        and prev.month = (s.month - interval 1 month)::date
    where s.month between {{ month_from() }} and {{ month_to() }}
)

select * from final
order by month, category, rank
