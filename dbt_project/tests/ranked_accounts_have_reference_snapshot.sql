{{ config(meta={"dagster": {"ref": {"name": "fct_monthly_rankings"}}}) }}
-- No ranked account without a reference snapshot (an ok snapshot of that month).
select r.month, r.territory_id
from {{ ref('fct_monthly_rankings') }} r
left join {{ ref('fct_account_monthly') }} a using (month, territory_id)
where r.month between {{ month_from() }} and {{ month_to() }}  -- the months of the run
  and (a.territory_id is null or a.snapshot_at is null
       or a.snapshot_at < r.month or a.snapshot_at >= r.month + interval 1 month)
