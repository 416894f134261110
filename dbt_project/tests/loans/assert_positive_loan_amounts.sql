-- Every scored application asks for a positive loan: returns rows whose loan_amount is 0 or negative.
-- Checks the run's window of application_date only (all history without window vars): macros/test_window.sql.
select
    application_id,
    loan_amount
from {{ ref('fct_application_features') }}
where
    loan_amount <= 0
    and {{ test_window_filter('application_date') }}
