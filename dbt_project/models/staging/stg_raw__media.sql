-- Posts returned with each snapshot of the months being built; a media id counts once per snapshot.
with source as (
    select * from {{ source('raw', 'media') }}
    where month between {{ lookback_from() }} and {{ month_to() }}
),

deduplicated as (
    select *
    from source
    qualify row_number() over (
        partition by month, handle, fetched_at, media_id order by file, line
    ) = 1
)

select
    month,
    handle,
    fetched_at,
    media_id,
    posted_at,
    media_type,
    like_count,
    comments_count,
    like_count + comments_count as interactions,
    permalink,
from deduplicated
