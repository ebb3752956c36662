"""The pagila sample schema (tests/material, an open-source sample database) filled with rows.

Upstream's data file is not vendored, so the rows are generated in SQL (deterministic apart from
pagila's ``uuidv7()`` defaults), in the shape of the real data: 6 languages, 109 countries,
600 cities, addresses, 16 categories, 200 actors, 1,000 films with full-text vectors and arrays,
2 stores, 2 staff with ``bytea`` pictures (NUL bytes included), customers, inventory, rentals,
and payments spread over the monthly partitions of the partitioned ``payment`` table. Left empty:
``film_embedding`` (a pgvector table) and the partition ``payment_p2026_07``.

Large objects: more than 1,000 of them, so pg_dump 17+ writes two large-object data blocks; a few
hold bytes that look like the archive's own block headers and end markers (arbitrary binary data
may), one is empty.
"""

from __future__ import annotations

from pathlib import Path

from baseline_guard.backup import PgConnectionInfo
from material.corpus import load

PAGILA_SCHEMA = Path(__file__).resolve().parents[3] / "material" / "schemas" / "pagila" / "4.1.0.sql"

# A large object made of what a data block boundary looks like in a custom-format archive (an
# int 0, then a block header: the type, sign 0, a dump id little-endian), for dump ids 1 to 6,000.
_FAKE_BOUNDARIES = (
    "SELECT string_agg(decode(repeat('00', 5) || f.t || '00' || substr(h, 7, 2) || substr(h, 5, 2)"
    " || substr(h, 3, 2) || substr(h, 1, 2), 'hex'), '' ORDER BY i)"
    " FROM generate_series(1, 6000) i, lpad(to_hex(i), 8, '0') h"
)

PAGILA_ROWS_SQL = f"""
SET session_replication_role = replica;  -- rows go in table by table; the foreign keys hold anyway
INSERT INTO public.language (name)
SELECT unnest(ARRAY['English', 'Italian', 'Japanese', 'Mandarin', 'French', 'German']);
INSERT INTO public.country (country) SELECT 'Country ' || i FROM generate_series(1, 109) i;
INSERT INTO public.city (city, country_id) SELECT 'City ' || i, 1 + i % 109 FROM generate_series(1, 600) i;
INSERT INTO public.address (address, address2, district, city_id, postal_code, phone)
SELECT i || ' ' || (ARRAY['Main', 'Oak', 'Lake', 'Hill'])[1 + i % 4] || ' Street',
       CASE WHEN i % 3 = 0 THEN NULL ELSE '' END, 'District ' || i % 50, 1 + i % 600,
       lpad((i * 7919 % 99999)::text, 5, '0'), (i::bigint * 982451653 % 10000000000)::text
FROM generate_series(1, 2000) i;
INSERT INTO public.category (name)
SELECT unnest(ARRAY['Action', 'Animation', 'Children', 'Classics', 'Comedy', 'Documentary', 'Drama',
                    'Family', 'Foreign', 'Games', 'Horror', 'Music', 'New', 'Sci-Fi', 'Sports', 'Travel']);
INSERT INTO public.actor (first_name, last_name)
SELECT 'ACTOR' || i, (ARRAY['GUINESS', 'WAHLBERG', 'CHASE', 'DAVIS', 'ZELLWEGER'])[1 + i % 5]
FROM generate_series(1, 200) i;
INSERT INTO public.film (title, description, release_year, language_id, rental_duration, rental_rate,
                         length, replacement_cost, rating, special_features, fulltext)
SELECT 'FILM ' || i, 'A ' || (ARRAY['Epic', 'Touching', 'Fateful', 'Astounding'])[1 + i % 4]
       || ' story of a boy and a dog in ' || (ARRAY['Berlin', '東京', 'São Paulo'])[1 + i % 3],
       1990 + i % 30, 1 + i % 6, 3 + i % 5, 0.99 + (i % 5), 46 + i % 140, 9.99 + (i % 21),
       (ARRAY['G', 'PG', 'PG-13', 'R', 'NC-17'])[1 + i % 5]::public.mpaa_rating,
       (ARRAY['Trailers', 'Commentaries', 'Deleted Scenes'])[1:1 + i % 3],
       to_tsvector('english', 'FILM ' || i)
FROM generate_series(1, 1000) i;
INSERT INTO public.film_actor (actor_id, film_id)
SELECT DISTINCT 1 + (f * 7 + k * 13) % 200, f FROM generate_series(1, 1000) f, generate_series(1, 5) k;
INSERT INTO public.film_category (film_id, category_id) SELECT f, 1 + f % 16 FROM generate_series(1, 1000) f;
INSERT INTO public.store (manager_staff_id, address_id) VALUES (1, 1), (2, 2);
INSERT INTO public.staff (first_name, last_name, address_id, email, store_id, username, password, picture)
VALUES ('Mike', 'Hillyer', 3, 'mike@example.test', 1, 'Mike', md5('a'),
        decode('89504e470d0a1a0a0000000d49484452' || repeat('00', 40) || md5('pic1'), 'hex')),
       ('Jon', 'Stephens', 4, 'jon@example.test', 2, 'Jon', NULL, decode(repeat('00ff', 300), 'hex'));
INSERT INTO public.customer (store_id, first_name, last_name, email, address_id, active)
SELECT 1 + i % 2, 'CUSTOMER' || i, 'LAST' || i % 300, 'customer' || i || '@example.test', 5 + i, 1
FROM generate_series(1, 1200) i;
INSERT INTO public.inventory (film_id, store_id) SELECT 1 + i % 1000, 1 + i % 2 FROM generate_series(1, 4600) i;
INSERT INTO public.rental (rental_date, inventory_id, customer_id, return_date, staff_id)
SELECT timestamptz '2022-01-01 00:00+00' + i * interval '97 minutes', 1 + i % 4600, 1 + i % 1200,
       CASE WHEN i % 40 = 0 THEN NULL ELSE timestamptz '2022-01-03 00:00+00' + i * interval '97 minutes' END,
       1 + i % 2
FROM generate_series(1, 24000) i;
INSERT INTO public.payment (customer_id, staff_id, rental_id, amount, payment_date)
SELECT 1 + i % 1200, 1 + i % 2, i, 0.99 + (i % 11), timestamptz '2022-01-01 00:00+00' + i * interval '97 minutes'
FROM generate_series(1, 24000) i;
SELECT setval('public.payment_payment_id_seq', 24000), setval('public.rental_rental_id_seq', 24000);
SELECT lo_from_bytea(0, decode(md5(i::text) || repeat('00', i % 7) || md5((i * 31)::text), 'hex'))
FROM generate_series(1, 1190) i;
SELECT lo_from_bytea(0, ({_FAKE_BOUNDARIES})) FROM (VALUES ('01'), ('03')) f(t);
SELECT lo_from_bytea(0, ''::bytea);
SELECT lo_from_bytea(0, (SELECT string_agg(sha256(int8send(k)), '' ORDER BY k) FROM generate_series(1, 9000) k));
"""


def fill_pagila(database: PgConnectionInfo) -> None:
    """Load the pagila schema and its rows into ``database`` (empty)."""
    conn = database.connect()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            load(cur, PAGILA_SCHEMA)
            cur.execute(PAGILA_ROWS_SQL)
    finally:
        conn.close()
