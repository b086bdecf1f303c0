-- The accounts registry as loaded (valid rows only; rejected rows are in raw.rejected_accounts).
with source as (
    select * from {{ source('raw', 'accounts') }}
)

select
    handle,
    territory_id,
    source_url,
    nullif(trim(ig_user_id), '') as registry_ig_user_id,
    registry_file,
    registry_line,
from source
