{# Date windows shared by every model: the landing-day window being (re)built and feature windows. #}

{# The landing-day window being (re)built comes from SANDS_BUILD_MIN_DATE and SANDS_BUILD_MAX_DATE
   (sands.features.dbt_vars.build_window_env), read at execution only: a value dbt sees while
   parsing (a `--vars`, or an env_var read then) makes it re-parse the project when it changes,
   which is every run. Unset, the window is everything. #}
{% macro build_window_bound(name, default) -%}
    {{- env_var(name, default) if execute else default -}}
{%- endmacro %}

{% macro window_start() %}cast('{{ build_window_bound("SANDS_BUILD_MIN_DATE", "1970-01-01") }}' as date){% endmacro %}
{% macro window_end() %}cast('{{ build_window_bound("SANDS_BUILD_MAX_DATE", "2999-12-31") }}' as date){% endmacro %}

{# Data tests check the build window only: their `where` names its bounds __window_start__ and
   __window_end__, filled in here at execution (a `where` is rendered when the yml is parsed). #}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- set where = where | replace('__window_start__', window_start()) | replace('__window_end__', window_end()) -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

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

{# What any feature date of the build window may see: landed by the window's end, and within the
   longest window of its start. Each date's own condition implies it; stated with constant bounds,
   it lets the engine skip the files and row groups of older days. #}
{% macro visible_in_build_window(landing_date, event_date) -%}
    {{ landing_date }} <= {{ window_end() }}
    and {{ event_date }} > {{ add_days(window_start(), '-' ~ lookback_days()) }}
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

{# Each user's (or artwork's) first event time, as `first_event_ts`, keyed by `key`. #}
{% macro first_events(key) -%}
    select {{ key }}, min(cast(event_ts as {{ type_utc_timestamp() }})) as first_event_ts
    from {{ source('bronze', 'interactions') }}
    group by {{ key }}
{%- endmacro %}

{# When a reference row's entity is known: its declared birth (signup, listing), or its first
   event if that came earlier (a null first event: none yet). #}
{% macro known_from(born, first_event) -%}
    cast(least(
        cast({{ born }} as {{ type_utc_timestamp() }}),
        coalesce({{ first_event }}, cast({{ born }} as {{ type_utc_timestamp() }}))
    ) as {{ type_utc_timestamp() }})
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
