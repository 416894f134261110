{{
    config(
        unique_key='application_id',
        **window_mart_config('application_date')
    )
}}

-- One row per application with the features to score. A run rebuilds the window
-- [min_date, max_date) on application_date; the pre-hook clears it first so a re-run replaces it exactly.

with

featurized as (

    select * from {{ ref('int_applications_featurized') }}

),

final as (

    select
        application_id,
        applied_at,
        application_date,
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
        channel,
        loan_to_income,
        monthly_installment,
        installment_to_income
    from featurized
    where {{ in_window('application_date') }}

)

select * from final
