{#- Ranks within each group are exactly 1..N (no gap, no duplicate). -#}
{% test contiguous_ranks(model, column_name, group_by) %}
select {{ group_by | join(', ') }}, count(*) as n, min({{ column_name }}) as min_rank,
       max({{ column_name }}) as max_rank, count(distinct {{ column_name }}) as distinct_ranks
from {{ model }}
group by {{ group_by | join(', ') }}
having min({{ column_name }}) <> 1
    or max({{ column_name }}) <> count(*)
    or count(distinct {{ column_name }}) <> count(*)
{% endtest %}
