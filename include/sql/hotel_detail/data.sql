INSERT INTO hotels (id, name, city, stars, currency)
SELECT id, name, city, stars, currency FROM seed_hotels ORDER BY id;

INSERT INTO rooms (hotel_id, room_type, price_per_night, max_guests)
SELECT hotel_id, room_type::room_type, price_per_night,
       CASE room_type WHEN 'single' THEN 1 WHEN 'double' THEN 2 ELSE 4 END
FROM seed_rooms ORDER BY hotel_id, room_type;

INSERT INTO amenities (code, label) VALUES
    ('wifi', 'Free Wi-Fi'), ('breakfast', 'Breakfast included'), ('parking', 'Parking'),
    ('pool', 'Swimming pool'), ('gym', 'Fitness room'), ('spa', 'Spa');

INSERT INTO hotel_amenities (hotel_id, amenity_id)
SELECT h.id, a.id
FROM hotels h JOIN amenities a ON a.id <= h.stars + 1
ORDER BY h.id, a.id;

-- Twelve monthly prices per room: the last one is the current price (open-ended).
INSERT INTO price_history (room_id, price, valid_from, valid_to)
SELECT r.id, round(r.price_per_night * (0.85 + 0.0125 * m), 2),
       date '2024-01-01' + (m - 1) * interval '1 month',
       CASE WHEN m < 12 THEN date '2024-01-01' + m * interval '1 month' END
FROM rooms r CROSS JOIN generate_series(1, 12) AS m
ORDER BY r.id, m;
