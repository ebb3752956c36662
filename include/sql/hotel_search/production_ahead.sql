-- Schema changes production runs and the baseline does not have yet (all safe).
ALTER TABLE hotels ADD COLUMN latitude numeric(9, 6), ADD COLUMN longitude numeric(9, 6);
ALTER TYPE hotel_category ADD VALUE 'boutique';

CREATE OR REPLACE VIEW hotel_listing AS
SELECT h.id, h.name, c.name AS city, h.stars, h.category, h.latitude, h.longitude
FROM hotels h
JOIN cities c ON c.id = h.city_id
WHERE h.active;

UPDATE hotels h SET latitude = v.lat + (h.stars - 3) * 0.004, longitude = v.lon + (h.stars - 3) * 0.006
FROM cities c
JOIN (VALUES ('Paris', 48.8566, 2.3522), ('Berlin', 52.5200, 13.4050),
             ('Rome', 41.9028, 12.4964), ('Lisbon', 38.7223, -9.1393)) AS v (city, lat, lon)
  ON v.city = c.name
WHERE c.id = h.city_id;
