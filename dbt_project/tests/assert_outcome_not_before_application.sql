-- A label cannot arrive before its application: returns labeled rows whose outcome_date < application_date.
select
    application_id,
    application_date,
    outcome_date
from {{ ref('fct_labeled_applications') }}
where outcome_date < application_date
