{{ config(unique_key='shipment_id', pre_hook="{{ clear_window('ship_date') }}") }}

-- Shipments of the run's window with the weather of their depot and hour (the context table joined in).
select
    shipments.shipment_id,
    shipments.ship_date,
    shipments.depot,
    shipments.hour,
    shipments.weight_kg,
    shipments.distance_km,
    shipments.express,
    weather.temperature_c,
    weather.rain_mm
from {{ ref('stg_parcel_shipments') }} as shipments
left join {{ ref('stg_parcel_weather') }} as weather
    on
        shipments.ship_date = weather.weather_date
        and shipments.depot = weather.depot
        and shipments.hour = weather.hour
where {{ in_window('shipments.ship_date') }}
