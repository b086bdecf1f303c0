-- One row per (territory, vintage) of the reference, with its ranking category. The
-- territories in force in month m: where m between valid_from and coalesce(valid_to, date '9999-12-01').
select
    territory_id,
    kind,
    code,
    name,
    category,
    population,
    code_departement,
    code_region,
    epci_siren,
    vintage,
    valid_from,
    valid_to,
    package_version,
from {{ ref('int_territories') }}
order by territory_id, vintage
