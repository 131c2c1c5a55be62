-- Per user, landing day and event day: weighted engagement with each style, medium, colour and tag.
{{ config(unique_key='landing_date', partition_by=('landing_date' if target.type == 'spark' else none)) }}

with weighted as (
    select
        user_id,
        artwork_id,
        landing_date,
        event_date,
        sum(
            case event_type
            {%- for event_type, weight in var('event_weights').items() %}
                when '{{ event_type }}' then {{ weight }}
            {%- endfor %}
                else 0
            end
        ) as weight
    from {{ ref('stg_interactions') }}
    where {{ in_build_window('landing_date') }}
    group by user_id, artwork_id, landing_date, event_date
),

-- Each artwork version's attribute values, kept with the interval the version was current.
{%- set attributes = [('style', 'style', false), ('medium', 'medium', false),
                      ('colour', 'colours', true), ('tag', 'tags', true)] %}
artwork_attributes as (
    {%- for attribute, column, is_list in attributes %}
    select artwork_id, valid_from, valid_to, '{{ attribute }}' as attribute,
        {{ explode_list(column) if is_list else column }} as value
    from {{ ref('stg_artworks') }}
    {{- "\n    union all" if not loop.last }}
    {%- endfor %}
)

select
    w.user_id,
    w.landing_date,
    w.event_date,
    a.attribute,
    a.value,
    cast(sum(w.weight) as {{ dbt.type_bigint() }}) as weight
from weighted as w
inner join artwork_attributes as a
    on w.artwork_id = a.artwork_id
    -- The artwork as it was at the end of the event's day.
    and {{ current_at('a', feature_ts('w.event_date')) }}
group by w.user_id, w.landing_date, w.event_date, a.attribute, a.value
