-- booking (the "order" service): book a quote (schema of the release the baseline runs).
CREATE TYPE order_status AS ENUM ('confirmed', 'cancelled');
CREATE TYPE payment_method AS ENUM ('card', 'bank_transfer', 'voucher');

CREATE TABLE guests (
    id         serial PRIMARY KEY,
    full_name  text NOT NULL,
    email      text NOT NULL CONSTRAINT guests_email_key UNIQUE,
    created_at timestamptz NOT NULL
);

CREATE SEQUENCE order_number_seq START 500000;

CREATE TABLE orders (
    id           uuid PRIMARY KEY,
    order_number bigint NOT NULL UNIQUE DEFAULT nextval('order_number_seq'),
    quote_id     uuid NOT NULL CONSTRAINT orders_quote_key UNIQUE,
    guest_id     integer NOT NULL REFERENCES guests (id),
    hotel_id     text NOT NULL,
    total        numeric(12, 2) NOT NULL CONSTRAINT orders_total_non_negative CHECK (total >= 0),
    currency     char(3) NOT NULL DEFAULT 'EUR',
    status       order_status NOT NULL DEFAULT 'confirmed',
    created_at   timestamptz NOT NULL
);
CREATE INDEX orders_guest_idx ON orders (guest_id);

CREATE TABLE payments (
    id       bigserial PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    amount   numeric(12, 2) NOT NULL CONSTRAINT payments_amount_positive CHECK (amount > 0),
    method   payment_method NOT NULL,
    paid_at  timestamptz NOT NULL
);
CREATE INDEX payments_order_idx ON payments (order_id);

CREATE VIEW order_summary AS
SELECT o.order_number, g.full_name, g.email, o.hotel_id, o.total, o.currency, o.status, o.created_at
FROM orders o
JOIN guests g ON g.id = o.guest_id;
