-- Communes absent from a vintage that the package lists as merged into another commune
-- (commune déléguée or associée of a commune nouvelle of that vintage).
select
    cast(vintage as integer) as vintage,
    code as code_commune,
    merged_into as merged_into_code,
from {{ source('reference', 'commune_successors') }}
