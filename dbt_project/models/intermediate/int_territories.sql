-- Every territory of every vintage with its category and population, and the
-- months the vintage is in force (valid_from … valid_to, null = still in force).
with communes as (
    select * from {{ ref('stg_reference__communes') }}
),

epci as (
    select * from {{ ref('stg_reference__epci') }}
),

vintages as (
    select * from {{ ref('stg_reference__vintages') }}
),

-- An EPCI's département is that of its most populous member commune (same vintage).
epci_departement as (
    select
        vintage,
        epci_siren as siren,
        arg_max(code_departement, [coalesce(population, -1), -try_cast(code_commune as bigint)]) as code_departement,
        arg_max(code_region, [coalesce(population, -1), -try_cast(code_commune as bigint)]) as code_region,
    from communes
    where epci_siren is not null
    group by vintage, epci_siren
),

population_by_departement as (
    select vintage, code_departement, sum(population)::bigint as population,
    from communes
    group by all
),

population_by_region as (
    select vintage, code_region, sum(population)::bigint as population,
    from communes
    group by all
),

regions as (
    select
        r.vintage,
        'region:' || r.code_region as territory_id,
        'region' as kind,
        r.code_region as code,
        r.region_name as name,
        'region' as category,
        p.population,
        null::varchar as code_departement,
        r.code_region,
        null::varchar as epci_siren,
    from {{ ref('stg_reference__regions') }} r
    left join population_by_region p using (vintage, code_region)
),

departements as (
    select
        d.vintage,
        'departement:' || d.code_departement,
        'departement',
        d.code_departement,
        d.departement_name,
        'departement',
        p.population,
        d.code_departement,
        d.code_region,
        null::varchar,
    from {{ ref('stg_reference__departements') }} d
    left join population_by_departement p using (vintage, code_departement)
),

epcis as (
    select
        e.vintage,
        'epci:' || e.siren,
        'epci',
        e.siren,
        e.epci_name,
        case
            when e.epci_type in ('METRO', 'MET69') then 'metropole'
            when e.epci_type in ('CA', 'CU') then 'communaute_agglomeration'
            else 'communaute_communes'
        end,
        e.population,
        ed.code_departement,
        ed.code_region,
        null::varchar,
    from epci e
    left join epci_departement ed using (vintage, siren)
),

villes as (
    select
        vintage,
        'commune:' || code_commune,
        'commune',
        code_commune,
        commune_name,
        case
            when population >= 100000 then 'grande_ville'
            when population >= 20000 then 'ville_moyenne'
            else 'petite_ville'
        end,
        population,
        code_departement,
        code_region,
        epci_siren,
    from communes
),

territories as (
    select * from regions
    union all select * from departements
    union all select * from epcis
    union all select * from villes
),

final as (
    select
        t.*,
        v.valid_from,
        v.valid_to,
        v.package_version,
    from territories t
    join vintages v using (vintage)
)

select * from final
