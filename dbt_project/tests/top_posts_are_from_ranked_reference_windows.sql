{{ config(severity="warn", meta={"dagster": {"ref": {"name": "fct_top_posts"}}}) }}
-- Every best post belongs to an account ranked that month, inside its reference window.
select p.month, p.handle, p.media_id
from {{ ref('fct_top_posts') }} p
left join {{ ref('fct_monthly_rankings') }} r
    on r.month = p.month and r.territory_id = p.territory_id and r.handle = p.handle
    and r.category = p.category
where p.month between {{ month_from() }} and {{ month_to() }}  -- the months of the run
  and (r.territory_id is null
       or p.posted_at < r.snapshot_at - interval 30 days
       or p.posted_at > r.snapshot_at)
