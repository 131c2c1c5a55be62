-- Every version of each artwork (reprices, edits) with the interval it was current, like stg_users;
-- an artwork is known from its listing, or from its first event if that came earlier.
with first_events as (
    {{ first_events('artwork_id') }}
),

versions as (
    select
        w.artwork_id,
        w.artist_id,
        cast(w.created_ts as {{ type_utc_timestamp() }}) as created_ts,
        {{ known_from('w.created_ts', 'f.first_event_ts') }} as known_from,
        w.title,
        w.style,
        w.medium,
        w.colours,
        w.tags,
        cast(w.price as {{ type_double() }}) as price,
        cast(w.updated_ts as {{ type_utc_timestamp() }}) as updated_ts
    from {{ source('bronze', 'artworks') }} as w
    left join first_events as f on w.artwork_id = f.artwork_id
)

select
    artwork_id,
    artist_id,
    created_ts,
    known_from,
    title,
    style,
    medium,
    colours,
    tags,
    price,
    updated_ts,
    {{ valid_from('artwork_id', 'known_from') }} as valid_from,
    {{ valid_to('artwork_id') }} as valid_to
from versions
