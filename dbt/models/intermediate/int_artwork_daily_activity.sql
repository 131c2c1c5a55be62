-- Per artwork, landing day and event day: funnel counts and revenue.
{{ config(unique_key='landing_date', partition_by=('landing_date' if target.type == 'spark' else none)) }}

select
    artwork_id,
    landing_date,
    event_date,
    {%- for event_type in var('event_types') %}
    cast(sum(case when event_type = '{{ event_type }}' then 1 else 0 end) as {{ dbt.type_bigint() }}) as n_{{ event_type }},
    {%- endfor %}
    {{ money_sum("case when event_type = 'purchase' then coalesce(price, 0) else 0 end") }} as revenue
from {{ ref('stg_interactions') }}
where {{ in_build_window('landing_date') }}
group by artwork_id, landing_date, event_date
