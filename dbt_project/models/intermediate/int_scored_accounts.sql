-- Percentile of each KPI within (month, category), the weighted score and the rank (docs/methodologie.md).
with kpis as (
    select * from {{ ref('int_account_kpis') }}
    where is_ranked
),

weights as (
    select
        coalesce(sum(weight) filter (where kpi = 'engagement_rate'), 0) as w_engagement_rate,
        coalesce(sum(weight) filter (where kpi = 'reach'), 0) as w_reach,
        coalesce(sum(weight) filter (where kpi = 'posts_per_day'), 0) as w_posts_per_day,
        coalesce(sum(weight) filter (where kpi = 'followers'), 0) as w_followers,
        coalesce(sum(weight) filter (where kpi = 'follower_ratio'), 0) as w_follower_ratio,
        sum(weight) as w_total,
    from {{ ref('stg_reference__scoring_weights') }}
),

percentiles as (
    select
        *,
        -- accounts whose likes are all hidden (engagement_rate null) are left out of this one
        case when engagement_rate is not null then percent_rank() over (
            partition by month, category, engagement_rate is null order by engagement_rate
        ) end as p_engagement_rate,
        percent_rank() over (partition by month, category order by reach) as p_reach,
        percent_rank() over (partition by month, category order by posts_per_day) as p_posts_per_day,
        percent_rank() over (partition by month, category order by followers) as p_followers,
        percent_rank() over (partition by month, category order by follower_ratio) as p_follower_ratio,
    from kpis
),

scored as (
    select
        p.*,
        p.engagement_rate is null as engagement_hidden,
        -- without an engagement rate, the other criteria with their weights rescaled
        round(
            100 * (
                coalesce(w.w_engagement_rate * p.p_engagement_rate, 0)
                + w.w_reach * p.p_reach
                + w.w_posts_per_day * p.p_posts_per_day
                + w.w_followers * p.p_followers
                + w.w_follower_ratio * p.p_follower_ratio
            ) / (w.w_total - case when p.p_engagement_rate is null then w.w_engagement_rate else 0 end),
            6
        ) as score,
    from percentiles p
    cross join weights w
)

select
    *,
    row_number() over (
        partition by month, category order by score desc, followers desc, territory_id asc
    ) as rank,
from scored
