-- One feature vector per listed artwork and feature date: popularity and conversion over trailing
-- windows, plus content attributes, as known at the end of that day; and what is trending: the
-- share of the marketplace's conversions (favourites and purchases) that went to the artwork's
-- style and medium over the last day and week.
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
    where {{ visible_in_build_window('a.landing_date', 'a.event_date') }}
    group by d.feature_date, a.artwork_id
),

listed as (
    select d.feature_date, w.*
    from feature_dates as d
    inner join {{ ref('stg_artworks') }} as w
        on w.known_from < {{ feature_ts('d.feature_date') }}
        and {{ current_at('w', feature_ts('d.feature_date')) }}
),

{%- set trend_windows = [1, 7] %}
{%- for attribute in ['style', 'medium'] %}

{{ attribute }}_conversions as (
    select
        w.feature_date,
        w.{{ attribute }},
        {%- for days in trend_windows %}
        cast(sum(coalesce(a.n_favourite_{{ days }}d, 0) + coalesce(a.n_purchase_{{ days }}d, 0)) as {{ dbt.type_bigint() }})
            as conversions_{{ days }}d{{ "," if not loop.last }}
        {%- endfor %}
    from listed as w
    inner join activity as a on w.feature_date = a.feature_date and w.artwork_id = a.artwork_id
    group by w.feature_date, w.{{ attribute }}
),

{{ attribute }}_shares as (
    select
        feature_date,
        {{ attribute }},
        {%- for days in trend_windows %}
        {{ safe_ratio('conversions_' ~ days ~ 'd', 'sum(conversions_' ~ days ~ 'd) over (partition by feature_date)') }}
            as share_{{ days }}d{{ "," if not loop.last }}
        {%- endfor %}
    from {{ attribute }}_conversions
){{ "," if not loop.last }}
{%- endfor %}

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
    {{ days_between('w.known_from', feature_ts('w.feature_date')) }} as age_days,
    w.price,
    w.style,
    w.medium,
    w.artist_id,
    {{ list_length('w.colours') }} as n_colours,
    {{ list_length('w.tags') }} as n_tags,
    {%- for attribute in ['style', 'medium'] %}
    {%- for days in trend_windows %}
    coalesce({{ attribute }}_shares.share_{{ days }}d, 0.0) as {{ attribute }}_conversion_share_{{ days }}d{{ "," if not loop.last }}
    {%- endfor %}{{ "," if not loop.last }}
    {%- endfor %}
from listed as w
left join activity as a on w.feature_date = a.feature_date and w.artwork_id = a.artwork_id
left join style_shares
    on w.feature_date = style_shares.feature_date and w.style = style_shares.style
left join medium_shares
    on w.feature_date = medium_shares.feature_date and w.medium = medium_shares.medium
