-- One feature vector per listed artwork and feature date: popularity and conversion over trailing
-- windows, plus content attributes, as known at the end of that day.
{{ config(unique_key='feature_date', partition_by=('feature_date' if target.type == 'spark' else none)) }}

{%- set windows = var('feature_windows') %}
{%- set longest = windows | max %}

with feature_dates as (
    {{ feature_dates_of(ref('int_artwork_daily_activity')) }}
),

activity as (
    select
        d.feature_date,
        a.artwork_id,
        {{ windowed_event_counts() }}
        {{ money_sum('a.revenue') }} as revenue_{{ longest }}d
    from feature_dates as d
    inner join {{ ref('int_artwork_daily_activity') }} as a
        on {{ visible_in_window('d.feature_date', 'a.landing_date', 'a.event_date') }}
    group by d.feature_date, a.artwork_id
),

listed as (
    select d.feature_date, w.*
    from feature_dates as d
    inner join {{ ref('stg_artworks') }} as w
        on w.created_ts < {{ feature_ts('d.feature_date') }}
        and {{ current_at('w', feature_ts('d.feature_date')) }}
)

select
    w.artwork_id,
    w.feature_date,
    {{ feature_ts('w.feature_date') }} as feature_ts,
    {%- for event_type in var('event_types') %}
    {%- for days in windows %}
    coalesce(a.n_{{ event_type }}_{{ days }}d, 0) as n_{{ event_type }}_{{ days }}d,
    {%- endfor %}
    {%- endfor %}
    coalesce(a.revenue_{{ longest }}d, 0) as revenue_{{ longest }}d,
    {%- for days in windows if days > 1 %}
    {{ safe_ratio('coalesce(a.n_click_' ~ days ~ 'd, 0)', 'coalesce(a.n_view_' ~ days ~ 'd, 0)') }}
        as click_rate_{{ days }}d,
    {{ safe_ratio('coalesce(a.n_favourite_' ~ days ~ 'd, 0)', 'coalesce(a.n_view_' ~ days ~ 'd, 0)') }}
        as favourite_rate_{{ days }}d,
    {{ safe_ratio('coalesce(a.n_purchase_' ~ days ~ 'd, 0)', 'coalesce(a.n_view_' ~ days ~ 'd, 0)') }}
        as purchase_rate_{{ days }}d,
    {%- endfor %}
    {{ days_between('w.created_ts', feature_ts('w.feature_date')) }} as age_days,
    w.price,
    w.style,
    w.medium,
    w.artist_id,
    {{ list_length('w.colours') }} as n_colours,
    {{ list_length('w.tags') }} as n_tags
from listed as w
left join activity as a on w.feature_date = a.feature_date and w.artwork_id = a.artwork_id
