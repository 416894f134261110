with

source as (

    select * from {{ source('raw', 'outcomes') }}

),

renamed as (

    select
        -- ids
        application_id,

        -- timestamps and dates
        application_date,
        outcome_date,
        observed_at,

        -- label, as integer 0/1
        cast(defaulted as integer) as defaulted

    from source

),

final as (

    select * from renamed

)

select * from final
