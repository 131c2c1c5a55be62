-- User x style (and medium, colour, tag) affinity over the longest window, as of each feature date:
-- the weighted share of the user's engagement that went to each value, and its rank.
--
-- A day's engagement counts for the feature dates from the day it landed until its event day
-- leaves the window: [landing_date, event_date + lookback). Rather than summing the whole window
-- again for every feature date (a range join that grows with window x dates and spilled tens of
-- GB at 1M events/day), each value's weight is a running sum of what enters and leaves, held
-- from one change to the next. The sums are integers, so the result is the range join's exactly.
{{ config(unique_key='feature_date', partition_by=('feature_date' if target.type == 'spark' else none)) }}

with feature_dates as (
    {{ feature_dates_of(ref('int_user_attribute_daily')) }}
),

bounds as (
    select min(feature_date) as first_date, max(feature_date) as last_date from feature_dates
),

-- Rows that count for some feature date of this build: landed by its end, and still in the
-- window at its start (and in the window on the day they landed).
counted as (
    select
        a.user_id,
        a.attribute,
        a.value,
        a.landing_date,
        a.event_date,
        a.weight,
        b.first_date,
        b.last_date
    from {{ ref('int_user_attribute_daily') }} as a
    cross join bounds as b
    where a.landing_date <= b.last_date
        and {{ within_days(lookback_days(), 'b.first_date', 'a.event_date') }}
        and {{ within_days(lookback_days(), 'a.landing_date', 'a.event_date') }}
),

-- What enters (from the build's first date at the earliest) and what leaves, per date.
changes as (
    select
        user_id,
        attribute,
        value,
        change_date,
        sum(weight) as weight
    from (
        select
            user_id,
            attribute,
            value,
            case when landing_date > first_date then landing_date else first_date end
                as change_date,
            weight
        from counted
        union all
        select
            user_id,
            attribute,
            value,
            {{ add_days('event_date', lookback_days()) }} as change_date,
            -weight as weight
        from counted
        where {{ add_days('event_date', lookback_days()) }} <= last_date
    ) as moves
    group by user_id, attribute, value, change_date
),

-- Each value's weight from one change until the next.
held as (
    select
        user_id,
        attribute,
        value,
        change_date as held_from,
        lead(change_date) over (
            partition by user_id, attribute, value order by change_date
        ) as held_until,
        sum(weight) over (
            partition by user_id, attribute, value order by change_date
            rows between unbounded preceding and current row
        ) as weight
    from changes
),

-- Weights are positive, so a value counts exactly while its running sum is above zero.
totals as (
    select
        d.feature_date,
        h.user_id,
        h.attribute,
        h.value,
        cast(h.weight as {{ dbt.type_bigint() }}) as weight
    from held as h
    inner join feature_dates as d
        on d.feature_date >= h.held_from
        and (h.held_until is null or d.feature_date < h.held_until)
    where h.weight > 0
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
