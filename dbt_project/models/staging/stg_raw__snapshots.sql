-- Snapshots of the months being built, plus the month before (previous rank, growth).
with source as (
    select * from {{ source('raw', 'snapshots') }}
    where month between {{ lookback_from() }} and {{ month_to() }}
)

select
    ---------- keys
    month,
    handle,
    fetched_at,
    ---------- provenance
    source,
    source = 'demo' as is_demo,
    file,
    line,
    ---------- status
    status,
    error_code,
    error_subcode,
    error_message,
    ---------- identity: business_discovery.id, the account behind the handle
    account_id as ig_user_id,
    ---------- figures
    followers_count as followers,
    follows_count as follows,
    media_count,
from source
