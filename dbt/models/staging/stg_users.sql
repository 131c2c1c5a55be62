-- Every version of each user profile with the interval it was current: from its updated_ts (the
-- first version from signup) until the next version's. Features pick the version valid at their
-- as-of time, so a later profile change never leaks into an earlier snapshot.
select
    user_id,
    cast(signup_ts as {{ type_utc_timestamp() }}) as signup_ts,
    age,
    gender,
    country,
    interests,
    cast(updated_ts as {{ type_utc_timestamp() }}) as updated_ts,
    {{ valid_from('user_id', 'signup_ts') }} as valid_from,
    {{ valid_to('user_id') }} as valid_to
from {{ source('bronze', 'users') }}
