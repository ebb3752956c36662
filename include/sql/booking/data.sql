-- Guests: production-like names; e-mail domains differ per environment (no data is shared).
INSERT INTO guests (full_name, email, created_at)
SELECT f.first || ' ' || l.last,
       lower(f.first || '.' || l.last || '.' || g) || CASE WHEN :'env' = 'prod' THEN '@mail.example.com'
                                                          ELSE '@baseline.example.test' END,
       timestamptz '2024-06-01 00:00:00+00' + g * interval '1 day 3 hours'
FROM generate_series(1, 150) AS g
JOIN (SELECT row_number() OVER () - 1 AS n, first FROM unnest(ARRAY['Ana', 'Ben', 'Chloé', 'David', 'Elena',
      'Farid', 'Greta', 'Hugo', 'Ines', 'Jonas']) AS first) AS f ON f.n = g % 10
JOIN (SELECT row_number() OVER () - 1 AS n, last FROM unnest(ARRAY['Silva', 'Müller', 'Rossi', 'Martin',
      'Costa', 'Weber', 'Bianchi', 'Dubois', 'Santos']) AS last) AS l ON l.n = g % 9
ORDER BY g;

-- Orders for the first 250 quotes (same ids and totals as in the quote database).
INSERT INTO orders (id, quote_id, guest_id, hotel_id, total, status, created_at)
SELECT md5('order-' || g)::uuid, md5('quote-' || g)::uuid, 1 + g % 150, r.hotel_id,
       r.price_per_night * (1 + g % 14),
       (CASE WHEN g % 17 = 0 THEN 'cancelled' ELSE 'confirmed' END)::order_status,
       timestamptz '2025-01-01 00:00:00+00' + g * interval '97 minutes' + interval '20 minutes'
FROM generate_series(1, 250) AS g
JOIN (SELECT row_number() OVER (ORDER BY hotel_id, room_type) - 1 AS n, * FROM seed_rooms) AS r
  ON r.n = g % 36
ORDER BY g;

INSERT INTO payments (order_id, amount, method, paid_at)
SELECT o.id, o.total,
       (ARRAY['card', 'card', 'bank_transfer', 'voucher'])[1 + o.order_number % 4]::payment_method,
       o.created_at + interval '5 minutes'
FROM orders o
WHERE o.status = 'confirmed'
ORDER BY o.order_number;
