{{ config(severity='warn') }}

-- Outcomes whose application is not in the loaded history. Outcomes of applications made before the history
-- began are expected (that day was never ingested) and left out; any other orphan is worth a warning.

select outcomes.application_id
from {{ ref('stg_outcomes') }} as outcomes
left join {{ ref('stg_applications') }} as applications
    on outcomes.application_id = applications.application_id
where applications.application_id is null
    and outcomes.application_date >= (select min(application_date) from {{ ref('stg_applications') }})
