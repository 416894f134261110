select
    weather_date,
    depot,
    hour,
    temperature_c,
    rain_mm
from {{ source('parcels', 'weather') }}
