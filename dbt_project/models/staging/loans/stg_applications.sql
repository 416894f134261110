with

source as (

    select * from {{ source('raw', 'applications') }}

),

renamed as (

    select
        -- ids
        application_id,

        -- timestamps and dates
        applied_at,
        application_date,

        -- features
        annual_income,
        loan_amount,
        term_months,
        interest_rate,
        credit_score,
        debt_to_income,
        employment_length_years,
        home_ownership,
        purpose,
        state,
        age,
        open_credit_lines,
        delinquencies_2y,
        revolving_utilization,
        inquiries_6m,
        channel

    from source

),

final as (

    select * from renamed

)

select * from final
