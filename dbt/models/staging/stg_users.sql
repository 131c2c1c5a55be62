select
    user_id,
    cast(signup_ts as {{ dbt.type_timestamp() }}) as signup_ts,
    age,
    gender,
    country,
    interests,
    cast(updated_ts as {{ dbt.type_timestamp() }}) as updated_ts
from {{ source('bronze', 'users') }}
