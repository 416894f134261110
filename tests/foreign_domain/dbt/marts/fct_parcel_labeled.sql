{{ config(unique_key='shipment_id', pre_hook="{{ clear_window('delivered_date') }}") }}

-- Shipments whose outcome arrived in the run's window (by delivered_date), with features and the label.
select
    shipments.shipment_id,
    shipments.ship_date,
    shipments.depot,
    shipments.hour,
    shipments.weight_kg,
    shipments.distance_km,
    shipments.express,
    weather.temperature_c,
    weather.rain_mm,
    deliveries.delivered_date,
    deliveries.late
from {{ ref('stg_parcel_deliveries') }} as deliveries
inner join {{ ref('stg_parcel_shipments') }} as shipments
    on shipments.shipment_id = deliveries.shipment_id
left join {{ ref('stg_parcel_weather') }} as weather
    on weather.weather_date = shipments.ship_date
    and weather.depot = shipments.depot
    and weather.hour = shipments.hour
where {{ in_window('deliveries.delivered_date') }}
