{{
    config(
        unique_key='application_id',
        **window_mart_config('outcome_date')
    )
}}

-- One row per application whose outcome is known: features plus label. A run rebuilds the window
-- [min_date, max_date) on outcome_date (the day the label arrived). Built from the intermediate model,
-- not from fct_application_features, so the two marts build independently.

with

featurized as (

    select * from {{ ref('int_applications_featurized') }}

),

outcomes as (

    select * from {{ ref('stg_outcomes') }}
    where {{ in_window('outcome_date') }}

),

final as (

    select
        featurized.application_id,
        featurized.applied_at,
        featurized.application_date,
        featurized.annual_income,
        featurized.loan_amount,
        featurized.term_months,
        featurized.interest_rate,
        featurized.credit_score,
        featurized.debt_to_income,
        featurized.employment_length_years,
        featurized.home_ownership,
        featurized.purpose,
        featurized.state,
        featurized.age,
        featurized.open_credit_lines,
        featurized.delinquencies_2y,
        featurized.revolving_utilization,
        featurized.inquiries_6m,
        featurized.channel,
        featurized.loan_to_income,
        featurized.monthly_installment,
        featurized.installment_to_income,
        outcomes.outcome_date,
        outcomes.defaulted,
        outcomes.observed_at
    from outcomes
    inner join featurized
        on outcomes.application_id = featurized.application_id

)

select * from final
