-- The eight ranking categories with their French label and the size of the published Top.
select
    category,
    label,
    top_n,
    sort_order,
from {{ ref('stg_reference__categories') }}
order by sort_order
