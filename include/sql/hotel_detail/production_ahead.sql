-- Schema changes production runs and the baseline does not have yet (all safe).
CREATE TABLE room_photos (
    id       serial PRIMARY KEY,
    room_id  integer NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    url      text NOT NULL,
    position smallint NOT NULL DEFAULT 0,
    CONSTRAINT room_photos_room_position_key UNIQUE (room_id, position)
);

INSERT INTO room_photos (room_id, url, position)
SELECT r.id, format('https://cdn.example.com/hotels/%s/%s/%s.jpg', r.hotel_id, r.room_type, p), p
FROM rooms r CROSS JOIN generate_series(0, 1) AS p
ORDER BY r.id, p;
