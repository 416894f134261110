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
    on deliveries.shipment_id = shipments.shipment_id
left join {{ ref('stg_parcel_weather') }} as weather
    on
        shipments.ship_date = weather.weather_date
        and shipments.depot = weather.depot
        and shipments.hour = weather.hour
where {{ in_window('deliveries.delivered_date') }}
