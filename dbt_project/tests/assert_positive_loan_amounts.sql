-- Every scored application asks for a positive loan: returns rows whose loan_amount is 0 or negative.
select
    application_id,
    loan_amount
from {{ ref('fct_application_features') }}
where loan_amount <= 0
