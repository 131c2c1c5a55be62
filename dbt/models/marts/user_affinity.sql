-- Each user's top style (and medium, colour, tag) over the longest window, as of each feature date:
-- the value with the most weighted engagement (ties to the first alphabetically) and its share.
-- Only the top value is kept: it is all the features read, and every value of every user for
-- every date was most of the 90-day rebuild's time and rows (2.7M a day at 1M events a day).
--
-- A day's engagement counts for the feature dates from the day it landed until its event day
-- leaves the window: [landing_date, event_date + lookback). A build of one date (the daily run)
-- sums its window directly. A build of many does not sum the whole window again for every date
-- (a range join that grows with window x dates and spilled tens of GB at 1M events/day): each
-- value's weight is a running sum of what enters and leaves, held from one change to the next.
-- The sums are integers, so both give the same table exactly (tests build it both ways).
{{ config(unique_key='feature_date', partition_by=('feature_date' if target.type == 'spark' else none)) }}

{%- set one_day = execute and window_start() == window_end() %}

with feature_dates as (
    {{ feature_dates_of(ref('int_user_attribute_daily')) }}
),

{% if one_day -%}
totals as (
    select
        d.feature_date,
        a.user_id,
        a.attribute,
        a.value,
        cast(sum(a.weight) as {{ dbt.type_bigint() }}) as weight
    from {{ ref('int_user_attribute_daily') }} as a
    inner join feature_dates as d
        on {{ visible_in_window('d.feature_date', 'a.landing_date', 'a.event_date') }}
    where {{ visible_in_build_window('a.landing_date', 'a.event_date') }}
        and {{ within_days(lookback_days(), 'a.landing_date', 'a.event_date') }}
    group by d.feature_date, a.user_id, a.attribute, a.value
),
{%- else -%}
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
    where {{ visible_in_build_window('a.landing_date', 'a.event_date') }}
        and a.landing_date <= b.last_date
        and {{ within_days(lookback_days(), 'b.first_date', 'a.event_date') }}
        and {{ within_days(lookback_days(), 'a.landing_date', 'a.event_date') }}
),

-- What enters (from the build's first date at the earliest) and what leaves, per date: each
-- counted row once as it enters and, if it leaves by the build's last date, once as it leaves
-- (one pass over `counted`, which engines would otherwise materialise for two).
changes as (
    select
        user_id,
        attribute,
        value,
        change_date,
        sum(weight) as weight
    from (
        select
            c.user_id,
            c.attribute,
            c.value,
            case
                when m.side < 0 then {{ add_days('c.event_date', lookback_days()) }}
                when c.landing_date > c.first_date then c.landing_date
                else c.first_date
            end as change_date,
            m.side * c.weight as weight
        from counted as c
        cross join (select 1 as side union all select -1 as side) as m
        where m.side > 0 or {{ add_days('c.event_date', lookback_days()) }} <= c.last_date
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
),
{%- endif %}

-- Per user and attribute: the total, and the heaviest value (its weight negated so that the
-- smallest pair is the heaviest weight, then the first value), one aggregation and no ranking.
tops as (
    select
        feature_date,
        user_id,
        attribute,
        sum(weight) as total_weight,
        min({{ struct_of([('neg_weight', '-weight'), ('value', 'value')]) }}) as top
    from totals
    group by feature_date, user_id, attribute
)

select
    feature_date,
    {{ feature_ts('feature_date') }} as feature_ts,
    user_id,
    attribute,
    t.top.value as value,
    -t.top.neg_weight as weight,
    cast(-t.top.neg_weight as {{ type_double() }}) / t.total_weight as share
from tops as t
