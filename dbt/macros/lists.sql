{# List columns (colours, tags, interests) differ by engine: dispatch, so models stay portable. #}

{% macro explode_list(column) %}{{ return(adapter.dispatch('explode_list', 'sands')(column)) }}{% endmacro %}
{% macro default__explode_list(column) %}unnest({{ column }}){% endmacro %}
{% macro spark__explode_list(column) %}explode({{ column }}){% endmacro %}

{% macro list_length(column) %}{{ return(adapter.dispatch('list_length', 'sands')(column)) }}{% endmacro %}
{% macro default__list_length(column) %}coalesce(len({{ column }}), 0){% endmacro %}
{% macro spark__list_length(column) %}coalesce(size({{ column }}), 0){% endmacro %}
