{{ config(severity='warn') }}

-- Outcomes whose application is not in the loaded history. Outcomes of applications made before the history
-- began are expected (that day was never ingested) and left out; any other orphan is worth a warning.
-- Checks the outcomes of the run's window of outcome_date against all loaded applications (macros/test_window.sql).

select outcomes.application_id
from {{ ref('stg_outcomes') }} as outcomes
left join {{ ref('stg_applications') }} as applications
    on outcomes.application_id = applications.application_id
where
    applications.application_id is null
    and {{ test_window_filter('outcomes.outcome_date') }}
    and outcomes.application_date >= (
        select min(loaded_applications.application_date) as first_application_date
        from {{ ref('stg_applications') }} as loaded_applications
    )
