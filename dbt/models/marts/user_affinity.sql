-- User x style (and medium, colour, tag) affinity over the longest window, as of each feature date:
-- the weighted share of the user's engagement that went to each value, and its rank.
{{ config(unique_key='feature_date', partition_by=('feature_date' if target.type == 'spark' else none)) }}

with feature_dates as (
    {{ feature_dates_of(ref('int_user_attribute_daily')) }}
),

totals as (
    select
        d.feature_date,
        a.user_id,
        a.attribute,
        a.value,
        cast(sum(a.weight) as {{ dbt.type_bigint() }}) as weight
    from feature_dates as d
    inner join {{ ref('int_user_attribute_daily') }} as a
        on {{ visible_in_window('d.feature_date', 'a.landing_date', 'a.event_date') }}
    group by d.feature_date, a.user_id, a.attribute, a.value
)

select
    feature_date,
    {{ feature_ts('feature_date') }} as feature_ts,
    user_id,
    attribute,
    value,
    weight,
    cast(weight as {{ type_double() }})
        / sum(weight) over (partition by feature_date, user_id, attribute) as share,
    {{ row_rank('partition by feature_date, user_id, attribute order by weight desc, value') }}
        as affinity_rank
from totals
