INSERT INTO rate_rules (hotel_id, room_type, min_nights, discount_pct)
SELECT h.id, NULL, n.min_nights, n.discount
FROM seed_hotels h
CROSS JOIN (VALUES (7, 5.00), (14, 10.00)) AS n (min_nights, discount)
ORDER BY h.id, n.min_nights;

-- Quote i is the same stay in every database (id md5('quote-i')), so orders can point at it.
INSERT INTO quotes (id, hotel_id, room_type, nights, guests, price_per_night, total, status,
                    legacy_promo_code, created_at, expires_at)
SELECT md5('quote-' || g)::uuid, r.hotel_id, r.room_type, q.nights, 1 + g % 4, r.price_per_night,
       r.price_per_night * q.nights,
       (CASE WHEN g <= 250 THEN 'ordered' WHEN g % 3 = 0 THEN 'expired' ELSE 'open' END)::quote_status,
       CASE WHEN g % 5 = 0 THEN 'SUMMER' || (2020 + g % 4) END,
       timestamptz '2025-01-01 00:00:00+00' + g * interval '97 minutes',
       timestamptz '2025-01-01 00:00:00+00' + g * interval '97 minutes' + interval '1 day'
FROM generate_series(1, CASE WHEN :'env' = 'prod' THEN 400 ELSE 320 END) AS g
CROSS JOIN LATERAL (SELECT 1 + g % 14 AS nights) AS q
JOIN (SELECT row_number() OVER (ORDER BY hotel_id, room_type) - 1 AS n, * FROM seed_rooms) AS r
  ON r.n = g % 36
ORDER BY g;
