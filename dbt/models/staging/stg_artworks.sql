select
    artwork_id,
    artist_id,
    cast(created_ts as {{ dbt.type_timestamp() }}) as created_ts,
    title,
    style,
    medium,
    colours,
    tags,
    cast(price as {{ type_double() }}) as price,
    cast(updated_ts as {{ dbt.type_timestamp() }}) as updated_ts
from {{ source('bronze', 'artworks') }}
