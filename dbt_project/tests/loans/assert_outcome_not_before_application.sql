-- A label cannot arrive before its application: returns labeled rows whose outcome_date < application_date.
-- Checks the run's window of outcome_date only (all history without window vars): macros/test_window.sql.
select
    application_id,
    application_date,
    outcome_date
from {{ ref('fct_labeled_applications') }}
where
    outcome_date < application_date
    and {{ test_window_filter('outcome_date') }}
