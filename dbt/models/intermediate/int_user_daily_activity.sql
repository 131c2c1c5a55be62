-- Per user, landing day and event day: event counts, last event times and spend.
-- Grain keeps the landing day so features only ever see events that had landed by their date.
{{ config(unique_key='landing_date', partition_by=('landing_date' if target.type == 'spark' else none)) }}

select
    user_id,
    landing_date,
    event_date,
    {%- for event_type in var('event_types') %}
    cast(sum(case when event_type = '{{ event_type }}' then 1 else 0 end) as {{ dbt.type_bigint() }}) as n_{{ event_type }},
    max(case when event_type = '{{ event_type }}' then event_ts end) as last_{{ event_type }}_ts,
    {%- endfor %}
    {{ money_sum("case when event_type = 'purchase' then coalesce(price, 0) else 0 end") }} as spend
from {{ ref('stg_interactions') }}
where {{ in_build_window('landing_date') }}
group by user_id, landing_date, event_date
