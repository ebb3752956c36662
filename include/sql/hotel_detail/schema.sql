-- hotel_detail: one hotel with its rooms and prices (schema of the release the baseline runs).
CREATE TYPE room_type AS ENUM ('single', 'double', 'suite');

CREATE TABLE hotels (
    id       text PRIMARY KEY,
    name     text NOT NULL,
    city     text NOT NULL,
    stars    smallint NOT NULL CONSTRAINT hotels_stars_range CHECK (stars BETWEEN 1 AND 5),
    currency char(3) NOT NULL DEFAULT 'EUR'
);

CREATE TABLE rooms (
    id              serial PRIMARY KEY,
    hotel_id        text NOT NULL REFERENCES hotels (id) ON DELETE CASCADE,
    room_type       room_type NOT NULL,
    price_per_night numeric(10, 2) NOT NULL CONSTRAINT rooms_price_non_negative CHECK (price_per_night >= 0),
    max_guests      smallint NOT NULL DEFAULT 2,
    CONSTRAINT rooms_hotel_type_key UNIQUE (hotel_id, room_type)
);

CREATE TABLE amenities (
    id    serial PRIMARY KEY,
    code  text NOT NULL UNIQUE,
    label text NOT NULL
);

CREATE TABLE hotel_amenities (
    hotel_id   text NOT NULL REFERENCES hotels (id) ON DELETE CASCADE,
    amenity_id integer NOT NULL REFERENCES amenities (id),
    PRIMARY KEY (hotel_id, amenity_id)
);

CREATE TABLE price_history (
    id         bigserial PRIMARY KEY,
    room_id    integer NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    price      numeric(10, 2) NOT NULL,
    valid_from date NOT NULL,
    valid_to   date,
    CONSTRAINT price_history_period CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE INDEX price_history_room_idx ON price_history (room_id, valid_from);

CREATE VIEW hotel_rooms AS
SELECT h.id AS hotel_id, h.name, h.city, r.room_type, r.price_per_night, h.currency
FROM hotels h
JOIN rooms r ON r.hotel_id = h.id;
