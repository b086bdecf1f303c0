{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_month_range() }}",
) }}
-- Registered accounts whose month went wrong: latest snapshot not ok, no snapshot at all,
-- another account behind the handle, a territory absent from the vintage in force, or
-- every post of the reference window hiding its likes.
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

-- An account is expected from the first month it was ever seen.
first_seen as (
    select * from {{ ref('int_account_first_seen') }}
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

territories as (
    select * from {{ ref('int_territories') }}
),

vintages as (
    select * from {{ ref('stg_reference__vintages') }}
),

successors as (
    select * from {{ ref('stg_reference__commune_successors') }}
),

-- A registered territory that does not exist in the vintage in force is not ranked.
inactive as (
    select
        e.month,
        e.territory_id,
        e.handle,
        'territory_inactive' as alert,
        e.territory_id || ' does not exist in the reference vintage ' || v.vintage
            || ' (@etalab/decoupage-administratif ' || v.package_version || ')'
            || coalesce('; merged into commune:' || s.merged_into_code
                || coalesce(' (' || m.name || ')', ''), '')
            || '; not ranked' as detail,
        e.territory_id || ' n''existe pas dans le millésime ' || v.vintage
            || ' du découpage administratif (@etalab/decoupage-administratif '
            || v.package_version || ')'
            || coalesce(' ; fusionnée dans la commune ' || s.merged_into_code
                || coalesce(' (' || m.name || ')', ''), '')
            || ' ; non classé' as detail_fr,
        null as latest_status,
        null as ranked_on_earlier_snapshot,
        coalesce(l.is_demo, e.first_source = 'demo') as is_demo,
    from expected e
    join vintages v on e.month between v.valid_from and coalesce(v.valid_to, date '9999-12-01')
    left join latest l using (month, handle)
    left join territories t on t.territory_id = e.territory_id and t.vintage = v.vintage
    left join successors s
        on s.vintage = v.vintage and 'commune:' || s.code_commune = e.territory_id
    left join territories m
        on m.territory_id = 'commune:' || s.merged_into_code and m.vintage = v.vintage
    where t.territory_id is null
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
        case
            when l.handle is null then 'aucune capture du compte ce mois-ci'
            else 'dernière capture le ' || {{ fr_datetime('l.fetched_at') }}
                || ' : ' || {{ fr_snapshot_status('l.status') }}
                || coalesce(' (code d''erreur ' || l.error_code || ')', '')
                || case
                    when r.handle is not null
                        then ' ; classé sur la capture réussie du '
                            || {{ fr_datetime('r.fetched_at') }}
                    else ' ; non classé'
                end
        end as detail_fr,
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
        account_changed_detail_fr as detail_fr,
        null as latest_status,
        null as ranked_on_earlier_snapshot,
        is_demo,
    from kpis
    where account_changed

    union all

    -- every post of the reference window hides its likes: still ranked, score rescaled
    select
        month,
        territory_id,
        handle,
        'likes_hidden' as alert,
        posts_likes_hidden_30d || ' / ' || posts_30d
            || ' posts of the reference window hide their like counts: no engagement rate, '
            || 'score over the other criteria (weights rescaled)' as detail,
        posts_likes_hidden_30d || ' sur ' || posts_30d
            || case
                when posts_30d = 1 then ' publication de la fenêtre de 30 jours masque ses J''aime'
                else ' publications de la fenêtre de 30 jours masquent leurs J''aime'
            end
            || ' : taux d''engagement masqué, score pris sur les autres indicateurs (poids '
            || 'ramenés au même total)' as detail_fr,
        null as latest_status,
        null as ranked_on_earlier_snapshot,
        is_demo,
    from kpis
    where is_ranked and engagement_rate is null

    union all

    select * from inactive
),

-- Name and category of the territory in the month's vintage, else in its latest one.
latest_territories as (
    select * from territories
    qualify row_number() over (partition by territory_id order by vintage desc) = 1
),

rankings as (
    select month, territory_id, rank from {{ ref('fct_monthly_rankings') }}
),

final as (
    select
        a.month,
        a.territory_id,
        coalesce(t.name, lt.name) as territory_name,
        coalesce(t.category, lt.category) as category,
        a.handle,
        a.alert,
        a.detail,
        a.detail_fr,
        a.latest_status,
        a.ranked_on_earlier_snapshot,
        r.month as last_ranked_month,
        r.rank as last_rank,
        a.is_demo,
    from alerts a
    join latest_territories lt on lt.territory_id = a.territory_id
    left join territories t
        on t.territory_id = a.territory_id
        and a.month between t.valid_from and coalesce(t.valid_to, date '9999-12-01')
    asof left join rankings r
        on r.territory_id = a.territory_id and a.month > r.month
)

select * from final
order by month, territory_id, alert
