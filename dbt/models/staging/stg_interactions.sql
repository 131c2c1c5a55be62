-- One row per accepted event, timestamps as naive UTC so date arithmetic is engine-neutral.
select
    event_id,
    user_id,
    artwork_id,
    event_type,
    cast(event_ts as {{ type_utc_timestamp() }}) as event_ts,
    cast(cast(event_ts as {{ type_utc_timestamp() }}) as date) as event_date,
    cast(price as {{ type_double() }}) as price,
    landing_date
from {{ source('bronze', 'interactions') }}
