-- hotel_search: find hotels in a city (schema of the release the baseline runs).
CREATE TYPE hotel_category AS ENUM ('budget', 'standard', 'premium', 'luxury');

CREATE TABLE cities (
    id           serial PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    country_code char(2) NOT NULL
);

CREATE TABLE hotels (
    id       text PRIMARY KEY,
    name     text NOT NULL,
    city_id  integer NOT NULL REFERENCES cities (id),
    stars    smallint NOT NULL CONSTRAINT hotels_stars_range CHECK (stars BETWEEN 1 AND 5),
    category hotel_category NOT NULL,
    active   boolean NOT NULL DEFAULT true
);
CREATE INDEX hotels_city_stars_idx ON hotels (city_id, stars);

CREATE SEQUENCE search_request_id_seq;
CREATE TABLE search_requests (
    id           bigint PRIMARY KEY DEFAULT nextval('search_request_id_seq'),
    city_id      integer NOT NULL REFERENCES cities (id),
    min_stars    smallint CONSTRAINT search_requests_min_stars_range CHECK (min_stars BETWEEN 1 AND 5),
    result_count integer NOT NULL CHECK (result_count >= 0),
    searched_at  timestamptz NOT NULL
);
ALTER SEQUENCE search_request_id_seq OWNED BY search_requests.id;
CREATE INDEX search_requests_searched_at_idx ON search_requests (searched_at);

CREATE VIEW hotel_listing AS
SELECT h.id, h.name, c.name AS city, h.stars, h.category
FROM hotels h
JOIN cities c ON c.id = h.city_id
WHERE h.active;
