with

applications as (

    select * from {{ ref('stg_applications') }}

),

rates as (

    select
        *,
        interest_rate / 100.0 / 12.0 as monthly_rate
    from applications

),

installments as (

    select
        *,
        case
            when loan_amount is null or term_months is null or monthly_rate is null then null
            when monthly_rate = 0 then loan_amount / term_months
            else loan_amount * monthly_rate / (1 - power(1 + monthly_rate, -term_months))
        end as monthly_installment
    from rates

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
        loan_amount / nullif(annual_income, 0) as loan_to_income,
        monthly_installment,
        monthly_installment * 12 / nullif(annual_income, 0) as installment_to_income
    from installments

)

select * from final
