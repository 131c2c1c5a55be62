-- Every version of each user profile with the interval it was current: from its updated_ts (the
-- first version from when the user is known) until the next version's. Features pick the version
-- valid at their as-of time, so a later profile change never leaks into an earlier snapshot.
-- A user is known from signup, or from their first event if that came earlier: a converted
-- history often stamps every profile with its export date, and the events prove the user existed.
with first_events as (
    {{ first_events('user_id') }}
),

profiles as (
    select
        u.user_id,
        cast(u.signup_ts as {{ type_utc_timestamp() }}) as signup_ts,
        {{ known_from('u.signup_ts', 'f.first_event_ts') }} as known_from,
        u.age,
        u.gender,
        u.country,
        u.interests,
        cast(u.updated_ts as {{ type_utc_timestamp() }}) as updated_ts
    from {{ source('bronze', 'users') }} as u
    left join first_events as f on u.user_id = f.user_id
)

select
    user_id,
    signup_ts,
    known_from,
    age,
    gender,
    country,
    interests,
    updated_ts,
    {{ valid_from('user_id', 'known_from') }} as valid_from,
    {{ valid_to('user_id') }} as valid_to
from profiles
