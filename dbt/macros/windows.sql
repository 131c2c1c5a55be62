{# Date windows shared by every model: the landing-day window being (re)built and feature windows. #}

{% macro window_start() %}cast('{{ var("min_date") }}' as date){% endmacro %}
{% macro window_end() %}cast('{{ var("max_date") }}' as date){% endmacro %}

{% macro in_build_window(column) -%}
    {{ column }} between {{ window_start() }} and {{ window_end() }}
{%- endmacro %}

{% macro lookback_days() %}{{ var("feature_windows") | max }}{% endmacro %}

{# Activity that a feature computed at the end of `feature_date` may see within its longest window:
   landed by then, and happened within the window. #}
{% macro visible_in_window(feature_date, landing_date, event_date) -%}
    {{ landing_date }} <= {{ feature_date }}
    and {{ event_date }} > {{ add_days(feature_date, '-' ~ lookback_days()) }}
{%- endmacro %}

{% macro within_days(days, feature_date, event_date) -%}
    {{ event_date }} > {{ add_days(feature_date, '-' ~ days) }}
{%- endmacro %}

{# Features describe what was known at the end of their day: midnight UTC after feature_date. #}
{% macro feature_ts(feature_date) -%}
    cast({{ add_days(feature_date, 1) }} as {{ type_utc_timestamp() }})
{%- endmacro %}

{% macro days_between(start_ts, end_ts) -%}
    (cast({{ seconds_between(start_ts, end_ts) }} as {{ type_double() }}) / 86400.0)
{%- endmacro %}

{# Money summed exactly, in cents, then stored as a double: the same bits on every engine and
   in any order of addition (plain double sums differ in the last bits between DuckDB and Spark). #}
{% macro money_sum(expr) -%}
    cast(sum(cast({{ expr }} as decimal(18, 2))) as {{ type_double() }})
{%- endmacro %}

{% macro safe_ratio(numerator, denominator) -%}
    case when {{ denominator }} > 0 then cast({{ numerator }} as {{ type_double() }}) / {{ denominator }} else 0.0 end
{%- endmacro %}


{# The feature dates a run builds: landing days in the build window that have activity. #}
{% macro feature_dates_of(relation) -%}
    select distinct landing_date as feature_date
    from {{ relation }}
    where {{ in_build_window('landing_date') }}
{%- endmacro %}

{# Event counts per type and trailing window, summed from daily activity rows `a` for date `d`. #}
{% macro windowed_event_counts() -%}
    {%- for event_type in var('event_types') %}
    {%- for days in var('feature_windows') %}
        cast(sum(
            case when {{ within_days(days, 'd.feature_date', 'a.event_date') }}
            then a.n_{{ event_type }} else 0 end
        ) as {{ dbt.type_bigint() }}) as n_{{ event_type }}_{{ days }}d,
    {%- endfor %}
    {%- if caller is defined %}{{ caller(event_type) }}{% endif %}
    {%- endfor %}
{%- endmacro %}

{# Version intervals for reference data: [valid_from, valid_to), the first from its birth time. #}
{% macro valid_from(key, born) -%}
    case
        when row_number() over (partition by {{ key }} order by updated_ts) = 1
            then cast(least({{ born }}, updated_ts) as {{ type_utc_timestamp() }})
        else cast(updated_ts as {{ type_utc_timestamp() }})
    end
{%- endmacro %}

{% macro valid_to(key) -%}
    cast(lead(updated_ts) over (partition by {{ key }} order by updated_ts) as {{ type_utc_timestamp() }})
{%- endmacro %}

{# The version of a reference row that was current at `ts` (alias `v`). #}
{% macro current_at(alias, ts) -%}
    {{ alias }}.valid_from < {{ ts }} and ({{ alias }}.valid_to is null or {{ alias }}.valid_to >= {{ ts }})
{%- endmacro %}
