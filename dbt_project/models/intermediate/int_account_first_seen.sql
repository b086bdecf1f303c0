{{ config(
    materialized='incremental',
    unique_key='handle',
    incremental_strategy='delete+insert',
) }}
-- The first month each handle was ever collected and the source of its first snapshot: an
-- account is expected (and alerted on) from that month. Kept up to date from the months of
-- each run (the earliest of what is stored and what the run sees), so a run reads its own
-- months, not the whole history; --full-refresh recomputes it from the months given.
with run_months as (
    select
        handle,
        min(month) as first_month,
        arg_min(source, fetched_at) as first_source,
    from {{ ref('stg_raw__snapshots') }}
    group by handle
)

{% if is_incremental() %}
, candidates as (
    select * from run_months
    union all
    select * from {{ this }} where handle in (select handle from run_months)
)

select
    handle,
    min(first_month) as first_month,
    arg_min(first_source, first_month) as first_source,
from candidates
group by handle
{% else %}
select * from run_months
{% endif %}
