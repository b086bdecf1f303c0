{{ config(meta={"dagster": {"ref": {"name": "fct_monthly_rankings"}}}) }}
-- rank_in_departement / rank_in_region are 1, 2, … n within (month, category, area) in the
-- national order (each one more than the one ranked just above it nationally), and are
-- present exactly where they apply: no région rank for régions, no département rank for
-- régions and départements.
with rankings as (
    select * from {{ ref('fct_monthly_rankings') }}
    where month between {{ month_from() }} and {{ month_to() }}  -- the months of the run
),

by_departement as (
    select
        'departement' as area, month, category, territory_id, rank_in_departement as local_rank,
        coalesce(lag(rank_in_departement) over (
            partition by month, category, code_departement order by rank) + 1, 1) as expected,
    from rankings
    where category not in ('region', 'departement') and code_departement is not null
),

by_region as (
    select
        'region' as area, month, category, territory_id, rank_in_region as local_rank,
        coalesce(lag(rank_in_region) over (
            partition by month, category, code_region order by rank) + 1, 1) as expected,
    from rankings
    where category <> 'region' and code_region is not null
),

not_applicable as (
    select 'none' as area, month, category, territory_id,
           coalesce(rank_in_departement, rank_in_region) as local_rank, null as expected,
    from rankings
    where (category = 'region' and (rank_in_region is not null or rank_in_departement is not null))
       or (category = 'departement' and rank_in_departement is not null)
       or (code_departement is null and rank_in_departement is not null)
       or (code_region is null and rank_in_region is not null)
)

select * from by_departement where local_rank is distinct from expected
union all
select * from by_region where local_rank is distinct from expected
union all
select * from not_applicable
