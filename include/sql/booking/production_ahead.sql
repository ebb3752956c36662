-- Schema changes production runs and the baseline does not have yet (all safe).
ALTER TABLE orders ADD COLUMN channel text NOT NULL DEFAULT 'web';
ALTER TYPE order_status ADD VALUE 'refunded';

CREATE OR REPLACE VIEW order_summary AS
SELECT o.order_number, g.full_name, g.email, o.hotel_id, o.total, o.currency, o.status, o.created_at,
       o.channel
FROM orders o
JOIN guests g ON g.id = o.guest_id;
