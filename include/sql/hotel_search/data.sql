INSERT INTO cities (name, country_code)
SELECT DISTINCT city,
       CASE city WHEN 'Paris' THEN 'FR' WHEN 'Berlin' THEN 'DE' WHEN 'Rome' THEN 'IT'
                 WHEN 'Lisbon' THEN 'PT' ELSE 'XX' END
FROM seed_hotels ORDER BY city;

INSERT INTO hotels (id, name, city_id, stars, category)
SELECT s.id, s.name, c.id, s.stars,
       (CASE WHEN s.stars <= 2 THEN 'budget' WHEN s.stars = 3 THEN 'standard'
             WHEN s.stars = 4 THEN 'premium' ELSE 'luxury' END)::hotel_category
FROM seed_hotels s JOIN cities c ON c.name = s.city
ORDER BY s.id;

-- Search traffic over the last 30 days (production saw more of it than the baseline).
INSERT INTO search_requests (city_id, min_stars, result_count, searched_at)
SELECT c.id, q.min_stars,
       (SELECT count(*) FROM hotels h WHERE h.city_id = c.id AND h.stars >= coalesce(q.min_stars, 1)),
       timestamptz '2025-01-01 00:00:00+00' + g * interval '43 minutes'
FROM generate_series(1, CASE WHEN :'env' = 'prod' THEN 700 ELSE 450 END) AS g
CROSS JOIN LATERAL (SELECT NULLIF(g % 6, 0)::smallint AS min_stars) AS q
JOIN cities c ON c.id = 1 + g % 4;
