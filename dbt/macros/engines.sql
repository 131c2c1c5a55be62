{# What differs by engine, dispatched so every model stays one definition for DuckDB and Spark.
   The default__ versions are what DuckDB runs; spark__ versions give the same values and types. #}

{# List columns (colours, tags, interests). #}
{% macro explode_list(column) %}{{ return(adapter.dispatch('explode_list', 'sands')(column)) }}{% endmacro %}
{% macro default__explode_list(column) %}unnest({{ column }}){% endmacro %}
{% macro spark__explode_list(column) %}explode({{ column }}){% endmacro %}

{% macro list_length(column) %}{{ return(adapter.dispatch('list_length', 'sands')(column)) }}{% endmacro %}
{% macro default__list_length(column) %}coalesce(len({{ column }}), 0){% endmacro %}
{% macro spark__list_length(column) %}coalesce(cast(size({{ column }}) as bigint), 0){% endmacro %}

{# 8-byte floats on every engine (dbt's type_float is 4 bytes on DuckDB and Spark). #}
{% macro type_double() %}{{ return(adapter.dispatch('type_double', 'sands')()) }}{% endmacro %}
{% macro default__type_double() %}double{% endmacro %}

{# Naive UTC timestamps on every engine: Spark's plain `timestamp` is zoned, so ask for NTZ. #}
{# (Not named type_timestamp: dbt would dispatch its own to a root-project default__ of that name.) #}
{% macro type_utc_timestamp() %}{{ return(adapter.dispatch('type_utc_timestamp', 'sands')()) }}{% endmacro %}
{% macro default__type_utc_timestamp() %}timestamp{% endmacro %}
{% macro spark__type_utc_timestamp() %}timestamp_ntz{% endmacro %}

{# A date `days` days later (earlier if negative). dbt-spark's dateadd goes through zoned
   unix times and returns a timestamp; date_add stays in dates. #}
{% macro add_days(date_expr, days) %}{{ return(adapter.dispatch('add_days', 'sands')(date_expr, days)) }}{% endmacro %}
{% macro default__add_days(date_expr, days) %}{{ dbt.dateadd('day', days, date_expr) }}{% endmacro %}
{% macro spark__add_days(date_expr, days) %}date_add({{ date_expr }}, {{ days }}){% endmacro %}

{# Whole seconds from `start_ts` to `end_ts`, counted like DuckDB's date_diff (epoch seconds). #}
{% macro seconds_between(start_ts, end_ts) %}{{ return(adapter.dispatch('seconds_between', 'sands')(start_ts, end_ts)) }}{% endmacro %}
{% macro default__seconds_between(start_ts, end_ts) %}{{ dbt.datediff(start_ts, end_ts, 'second') }}{% endmacro %}
{% macro spark__seconds_between(start_ts, end_ts) -%}
    (unix_seconds(cast({{ end_ts }} as timestamp)) - unix_seconds(cast({{ start_ts }} as timestamp)))
{%- endmacro %}

{# A struct of named fields, [(name, expression), ...]; structs order field by field, so the
   min or max of one picks a row by several keys in a plain aggregation. #}
{% macro struct_of(fields) %}{{ return(adapter.dispatch('struct_of', 'sands')(fields)) }}{% endmacro %}
{% macro default__struct_of(fields) -%}
    struct_pack({% for name, expr in fields %}{{ name }} := {{ expr }}{{ ", " if not loop.last }}{% endfor %})
{%- endmacro %}
{% macro spark__struct_of(fields) -%}
    named_struct({% for name, expr in fields %}'{{ name }}', {{ expr }}{{ ", " if not loop.last }}{% endfor %})
{%- endmacro %}

{# Distinct non-null values of a column as a list, in a group by. #}
{% macro distinct_list(column) %}{{ return(adapter.dispatch('distinct_list', 'sands')(column)) }}{% endmacro %}
{% macro default__distinct_list(column) %}list(distinct {{ column }}) filter (where {{ column }} is not null){% endmacro %}
{% macro spark__distinct_list(column) %}collect_set({{ column }}){% endmacro %}

{# A name as typed by people, compared without case or surrounding spaces ("Pop-Art " is "pop-art"). #}
{% macro name_key(expr) %}lower(trim({{ expr }})){% endmacro %}

{# Each element of list `items` as `name_key` of it. #}
{% macro name_keys(items) %}{{ return(adapter.dispatch('name_keys', 'sands')(items)) }}{% endmacro %}
{% macro default__name_keys(items) -%}
    list_transform({{ items }}, lambda item: {{ name_key('item') }})
{%- endmacro %}
{% macro spark__name_keys(items) -%}
    transform({{ items }}, item -> {{ name_key('item') }})
{%- endmacro %}

{# The first element of list `items` that is in list `known`; null if none (or either is null). #}
{% macro first_known(items, known) %}{{ return(adapter.dispatch('first_known', 'sands')(items, known)) }}{% endmacro %}
{% macro default__first_known(items, known) -%}
    list_filter({{ items }}, lambda item: list_contains({{ known }}, item))[1]
{%- endmacro %}
{% macro spark__first_known(items, known) -%}
    try_element_at(filter({{ items }}, item -> array_contains({{ known }}, item)), 1)
{%- endmacro %}
