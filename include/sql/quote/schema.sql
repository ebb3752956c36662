-- quote: price a stay (schema of the release the baseline runs).
CREATE TYPE quote_status AS ENUM ('open', 'ordered', 'expired');

CREATE SEQUENCE quote_number_seq START 100000;

CREATE TABLE quotes (
    id                uuid PRIMARY KEY,
    quote_number      bigint NOT NULL UNIQUE DEFAULT nextval('quote_number_seq'),
    hotel_id          text NOT NULL,
    room_type         text NOT NULL,
    nights            smallint NOT NULL CONSTRAINT quotes_nights_range CHECK (nights BETWEEN 1 AND 30),
    guests            smallint NOT NULL CONSTRAINT quotes_guests_range CHECK (guests BETWEEN 1 AND 4),
    price_per_night   numeric(10, 2) NOT NULL,
    total             numeric(12, 2) NOT NULL,
    currency          char(3) NOT NULL DEFAULT 'EUR',
    status            quote_status NOT NULL DEFAULT 'open',
    legacy_promo_code text,
    created_at        timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    CONSTRAINT quotes_total_matches CHECK (total = price_per_night * nights)
);
CREATE INDEX quotes_hotel_idx ON quotes (hotel_id, room_type);

CREATE TABLE rate_rules (
    id           serial PRIMARY KEY,
    hotel_id     text NOT NULL,
    room_type    text,
    min_nights   smallint NOT NULL DEFAULT 1,
    discount_pct numeric(5, 2) NOT NULL CONSTRAINT rate_rules_discount_range CHECK (discount_pct BETWEEN 0 AND 50),
    CONSTRAINT rate_rules_key UNIQUE (hotel_id, room_type, min_nights)
);

CREATE VIEW open_quotes AS
SELECT id, quote_number, hotel_id, room_type, nights, total, currency, expires_at
FROM quotes
WHERE status = 'open';
