{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as rows_per_key
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{% test non_negative(model, column_name) %}
select {{ column_name }} from {{ model }} where {{ column_name }} < 0
{% endtest %}

{% test between(model, column_name, low, high) %}
select {{ column_name }} from {{ model }}
where {{ column_name }} < {{ low }} or {{ column_name }} > {{ high }}
{% endtest %}

{# Counts over a shorter window can never exceed those over a longer one. #}
{% test window_counts_nested(model) %}
{%- set windows = var('feature_windows') | sort %}
{%- set conditions = [] %}
{%- for event_type in var('event_types') %}
{%- for i in range(windows | length - 1) %}
{%- do conditions.append('n_' ~ event_type ~ '_' ~ windows[i] ~ 'd > n_' ~ event_type ~ '_' ~ windows[i + 1] ~ 'd') %}
{%- endfor %}
{%- endfor %}
select * from {{ model }}
where {{ conditions | join(' or ') }}
{% endtest %}

{# Rows dated before their entity existed (an artwork listed, a user signed up, after the event):
   the declared date is wrong (features count from the first event, `known_from`). Within
   `tolerance` it is precision, not news: a signup kept to the microsecond beside events kept to
   the millisecond put 588 rows a day of a session log here. #}
{% test existed_before(model, column_name, to, field, since, at, tolerance='1 second') %}
select m.{{ column_name }}, m.{{ at }}, r.first_seen
from (select * from {{ model }}) as m
inner join (
    select {{ field }}, min({{ since }}) as first_seen from {{ to }} group by {{ field }}
) as r
    on m.{{ column_name }} = r.{{ field }}
where r.first_seen > m.{{ at }} + interval {{ tolerance }}
{% endtest %}
