-- One feature vector per user and feature date: what the marketplace knew about the user at the
-- end of that day. Every user signed up by then gets a row, active or not, so a missing row
-- always means "unknown user", never "no activity".
{{ config(unique_key='feature_date', partition_by=('feature_date' if target.type == 'spark' else none)) }}

{%- set windows = var('feature_windows') %}

with feature_dates as (
    {{ feature_dates_of(ref('int_user_daily_activity')) }}
),

activity as (
    select
        d.feature_date,
        a.user_id,
        {%- call(event_type) windowed_event_counts() %}
        max(a.last_{{ event_type }}_ts) as last_{{ event_type }}_ts,
        {%- endcall %}
        {{ money_sum('a.spend') }} as spend_{{ windows | max }}d,
        cast(count(distinct a.event_date) as {{ dbt.type_bigint() }}) as active_days_{{ windows | max }}d
    from feature_dates as d
    inner join {{ ref('int_user_daily_activity') }} as a
        on {{ visible_in_window('d.feature_date', 'a.landing_date', 'a.event_date') }}
    where {{ visible_in_build_window('a.landing_date', 'a.event_date') }}
    group by d.feature_date, a.user_id
),

top_values as (
    select
        feature_date,
        user_id,
        {%- for attribute in ['style', 'medium', 'colour', 'tag'] %}
        max(case when attribute = '{{ attribute }}' then value end) as top_{{ attribute }},
        max(case when attribute = '{{ attribute }}' then share end) as top_{{ attribute }}_share
        {{- "," if not loop.last }}
        {%- endfor %}
    from {{ ref('user_affinity') }}
    where {{ in_build_window('feature_date') }}
    group by feature_date, user_id
),

known_users as (
    select d.feature_date, u.*
    from feature_dates as d
    inner join {{ ref('stg_users') }} as u
        on u.known_from < {{ feature_ts('d.feature_date') }}
        and {{ current_at('u', feature_ts('d.feature_date')) }}
),

-- Styles some artwork had by the end of each feature date: a declared interest names a style
-- only once the catalogue knows it (interests mix styles, tags and free words). Interests are
-- typed by people, so they match a style without case or surrounding spaces; the declared style
-- is then the catalogue's first spelling of it, the one its artworks carry. One row per style
-- key first, so the join is dates x styles, not dates x artwork versions.
style_first_seen as (
    select
        {{ name_key('style') }} as style_key,
        min({{ struct_of([('first_seen', 'valid_from'), ('style', 'style')]) }}) as earliest
    from {{ ref('stg_artworks') }}
    where style is not null
    group by {{ name_key('style') }}
),

known_styles as (
    select d.feature_date, {{ distinct_list('s.style_key') }} as style_keys
    from feature_dates as d
    inner join style_first_seen as s on s.earliest.first_seen < {{ feature_ts('d.feature_date') }}
    group by d.feature_date
)

select
    u.user_id,
    u.feature_date,
    {{ feature_ts('u.feature_date') }} as feature_ts,
    {%- for event_type in var('event_types') %}
    {%- for days in windows %}
    coalesce(a.n_{{ event_type }}_{{ days }}d, 0) as n_{{ event_type }}_{{ days }}d,
    {%- endfor %}
    {{ days_between('a.last_' ~ event_type ~ '_ts', feature_ts('u.feature_date')) }}
        as days_since_{{ event_type }},
    {%- endfor %}
    coalesce(a.spend_{{ windows | max }}d, 0) as spend_{{ windows | max }}d,
    coalesce(a.active_days_{{ windows | max }}d, 0) as active_days_{{ windows | max }}d,
    {%- for attribute in ['style', 'medium', 'colour', 'tag'] %}
    t.top_{{ attribute }},
    coalesce(t.top_{{ attribute }}_share, 0) as top_{{ attribute }}_share,
    {%- endfor %}
    u.age,
    u.gender,
    u.country,
    {{ list_length('u.interests') }} as n_interests,
    -- The first style the user declared (in their own order): what a newcomer without history
    -- said they like, matched against each artwork's style by the ranker.
    k.earliest.style as declared_style,
    {{ days_between('u.known_from', feature_ts('u.feature_date')) }} as tenure_days
from known_users as u
left join activity as a on u.feature_date = a.feature_date and u.user_id = a.user_id
left join top_values as t on u.feature_date = t.feature_date and u.user_id = t.user_id
left join known_styles as s on u.feature_date = s.feature_date
left join style_first_seen as k
    on k.style_key = {{ first_known(name_keys('u.interests'), 's.style_keys') }}
