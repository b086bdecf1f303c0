-- Every territory with its category and population.
with communes as (
    select * from {{ ref('stg_reference__communes') }}
),

epci as (
    select * from {{ ref('stg_reference__epci') }}
),

-- An EPCI's département is that of its most populous member commune.
epci_departement as (
    select
        epci_siren as siren,
        arg_max(code_departement, [coalesce(population, -1), -try_cast(code_commune as bigint)]) as code_departement,
        arg_max(code_region, [coalesce(population, -1), -try_cast(code_commune as bigint)]) as code_region,
    from communes
    where epci_siren is not null
    group by epci_siren
),

regions as (
    select
        'region:' || r.code_region as territory_id,
        'region' as kind,
        r.code_region as code,
        r.region_name as name,
        'region' as category,
        (select sum(c.population) from communes c where c.code_region = r.code_region) as population,
        null::varchar as code_departement,
        r.code_region,
    from {{ ref('stg_reference__regions') }} r
),

departements as (
    select
        'departement:' || d.code_departement,
        'departement',
        d.code_departement,
        d.departement_name,
        'departement',
        (select sum(c.population) from communes c where c.code_departement = d.code_departement),
        d.code_departement,
        d.code_region,
    from {{ ref('stg_reference__departements') }} d
),

epcis as (
    select
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
    from epci e
    left join epci_departement ed using (siren)
),

villes as (
    select
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
    from communes
),

final as (
    select * from regions
    union all select * from departements
    union all select * from epcis
    union all select * from villes
)

select * from final
