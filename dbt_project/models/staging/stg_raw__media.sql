-- Posts returned with each snapshot of the months being built (plus the month before).
-- The loader keeps one row per (snapshot, media id): no window over every post here
-- (it held every post of a backfill in memory); the unique test below checks it.
with source as (
    select * from {{ source('raw', 'media') }}
    where month between {{ lookback_from() }} and {{ month_to() }}
)

select
    month,
    handle,
    fetched_at,
    media_id,
    posted_at,
    media_type,
    media_product_type,
    like_count,
    comments_count,
    like_count is null as likes_hidden,
    -- hidden likes: no interaction count (comments turned off count as 0 comments)
    like_count + coalesce(comments_count, 0) as interactions,
    view_count,
    permalink,
from source
