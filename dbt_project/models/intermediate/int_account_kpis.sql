-- The five KPIs (docs/methodologie.md) for each (month, registered account with a reference snapshot).
with reference as (
    select * from {{ ref('int_reference_snapshots') }}
),

media as (
    select * from {{ ref('stg_raw__media') }}
),

territories as (
    select * from {{ ref('int_territories') }}
),

-- Posts of the reference snapshot published in W = [fetched_at - 30 days, fetched_at].
posts as (
    select
        r.month,
        r.handle,
        count(*) as posts_30d,
        -- hidden likes (interactions null): the post counts for frequency, not for engagement
        count(*) filter (where m.interactions is null) as posts_likes_hidden_30d,
        coalesce(sum(m.interactions), 0)::bigint as interactions_30d,
    from reference r
    join media m
        on m.month = r.month
        and m.handle = r.handle
        and m.fetched_at = r.fetched_at
        and m.posted_at between r.fetched_at - interval 30 days and r.fetched_at
    group by all
),

joined as (
    select
        r.*,
        t.category,
        t.population,
        t.vintage,
        coalesce(p.posts_30d, 0) as posts_30d,
        coalesce(p.posts_likes_hidden_30d, 0) as posts_likes_hidden_30d,
        coalesce(p.interactions_30d, 0) as interactions_30d,
        prev.followers as previous_followers,
        prev.ig_user_id as previous_ig_user_id,
    from reference r
    -- the territory as it was in the vintage in force for the month (none: not ranked)
    join territories t
        on t.territory_id = r.territory_id
        and r.month between t.valid_from and coalesce(t.valid_to, date '9999-12-01')
    left join posts p using (month, handle)
    left join reference prev
        on prev.territory_id = r.territory_id
        and prev.month = (r.month - interval 1 month)::date
),

-- Account identity: the id behind the handle changed since the previous month, or is not
-- the one the registry names. Such a month starts a new history (nothing is chained to it).
with_identity as (
    select
        *,
        coalesce(
            (previous_ig_user_id is not null and ig_user_id is not null
                and ig_user_id <> previous_ig_user_id)
            or (registry_ig_user_id is not null and ig_user_id is not null
                and ig_user_id <> registry_ig_user_id),
            false
        ) as account_changed,
    from joined
),

final as (
    select
        ---------- keys
        month,
        territory_id,
        handle,
        category,
        ---------- snapshot
        fetched_at as snapshot_at,
        followers,
        follows,
        media_count,
        population,
        vintage,
        ---------- KPIs (rates are fractions)
        posts_30d,
        posts_30d / 30 as posts_per_day,
        posts_likes_hidden_30d,
        interactions_30d,
        -- over the posts whose likes are visible; null when every post hides its likes
        case
            when posts_30d = 0 or followers = 0 then 0.0
            when posts_likes_hidden_30d = posts_30d then null
            else interactions_30d / ((posts_30d - posts_likes_hidden_30d) * followers)
        end as engagement_rate,
        case when population > 0 then followers / population end as reach,
        followers / greatest(follows, 1) as follower_ratio,
        ---------- growth (not chained across a change of account)
        case when not account_changed then followers - previous_followers end as followers_growth,
        case
            when previous_followers > 0 and not account_changed
                then (followers - previous_followers) / previous_followers
        end as followers_growth_rate,
        ---------- identity
        ig_user_id,
        account_changed,
        case
            when previous_ig_user_id is not null and ig_user_id <> previous_ig_user_id
                then 'Instagram id behind @' || handle || ' changed from ' || previous_ig_user_id
                    || ' (previous month) to ' || ig_user_id
            when account_changed
                then 'Instagram id behind @' || handle || ' is ' || ig_user_id
                    || ', not the registry''s ' || registry_ig_user_id
        end as account_changed_detail,
        case
            when previous_ig_user_id is not null and ig_user_id <> previous_ig_user_id
                then 'l''identifiant Instagram de @' || handle || ' est passé de '
                    || previous_ig_user_id || ' (mois précédent) à ' || ig_user_id
            when account_changed
                then 'l''identifiant Instagram de @' || handle || ' est ' || ig_user_id
                    || ', et non ' || registry_ig_user_id || ' comme dans le registre'
        end as account_changed_detail_fr,
        ---------- provenance
        population > 0 as is_ranked,
        source,
        is_demo,
    from with_identity
)

select * from final
