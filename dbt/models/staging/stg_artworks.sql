-- Every version of each artwork (reprices, edits) with the interval it was current, like stg_users.
select
    artwork_id,
    artist_id,
    cast(created_ts as {{ type_utc_timestamp() }}) as created_ts,
    title,
    style,
    medium,
    colours,
    tags,
    cast(price as {{ type_double() }}) as price,
    cast(updated_ts as {{ type_utc_timestamp() }}) as updated_ts,
    {{ valid_from('artwork_id', 'created_ts') }} as valid_from,
    {{ valid_to('artwork_id') }} as valid_to
from {{ source('bronze', 'artworks') }}
