select
    shipment_id,
    ship_date,
    depot,
    hour,
    weight_kg,
    distance_km,
    cast(express as integer) as express
from {{ source('parcels', 'shipments') }}
