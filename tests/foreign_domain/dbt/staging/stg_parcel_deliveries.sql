select
    shipment_id,
    delivered_date,
    cast(late as integer) as late
from {{ source('parcels', 'deliveries') }}
