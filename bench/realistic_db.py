"""A realistic benchmark database: many tables of mixed types and sizes, deterministic, built in SQL.

pgbench's tables are mostly blank-padded filler that compresses to almost nothing, which flatters
any dump. This one looks more like an application's database: a shop (customers, products with
images, orders, order items, reviews), an event log with nested ``jsonb``, sensor readings with
floats and arrays, incompressible attachments (``bytea`` of hash output, like already-compressed
files), and thirty small reference tables; text is made of real words with a skewed (Zipf-like)
frequency, in English, German and Chinese; numerics, timestamps, ``inet``, ``uuid``, enums,
arrays, foreign keys, btree and GIN indexes. ``scale`` 0.7 is about 0.9 GB on disk.

Every value comes from ``random()`` after ``setseed`` in one backend with parallel query off,
or from hashes of the row number, so the same scale gives the same rows on every run.

    .venv/bin/python bench/realistic_db.py --dsn "host=... dbname=bench" [--scale 1.0]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import psycopg2

_VOCABULARY = """
the of and to in is you that it he was for on are as with his they at be this have from or one
had by word but not what all were we when your can said there use an each which she do how their if
will up other about out many then them these so some her would make like him into time has look two
more write go see number no way could people my than first water been call who oil its now find long
down day did get come made may part order price customer invoice shipping delivery payment refund
account address street city country postal code phone email account status pending paid shipped
cancelled returned warehouse stock item product quantity discount coupon tax total subtotal currency
booking hotel room night guest arrival departure breakfast review rating excellent good average poor
clean quiet friendly staff location station airport beach centre view pool parking wifi service
search result filter page session login logout error timeout retry request response latency
Bestellung Rechnung Lieferung Zahlung Kunde Adresse Straße Stadt Preis Menge Rabatt Steuer Gesamt
Zimmer Nacht Gast Anreise Abreise Frühstück Bewertung ausgezeichnet freundlich sauber ruhig Lage
订单 发票 配送 付款 客户 地址 城市 价格 数量 折扣 税费 总计 酒店 房间 入住 退房 早餐 评价 干净 安静
"""
WORDS = _VOCABULARY.split()

# A word drawn with a skew toward the first (most common) words, as in real text.
_WORD = "v.w[1 + floor(power(random(), 2.2) * array_length(v.w, 1))::int]"
_VOCAB = "(SELECT array_agg(word ORDER BY n) AS w FROM bench_vocab) v"


def _sentence(words: int, max_chars: int | None = None, min_chars: int = 8) -> str:
    text = " || ' ' || ".join([_WORD] * words)
    if max_chars is None:
        return f"({text})"
    return f"left({text}, {min_chars} + floor(random() * {max_chars - min_chars})::int)"


def _opaque_bytes(row: str, min_len: int, max_len: int) -> str:
    """Deterministic incompressible bytes (SHA-256 chain), like an already-compressed file."""
    return (
        f"(SELECT string_agg(sha256(int8send({row}::bigint * 100000 + k)), '' ORDER BY k) "
        f"FROM generate_series(1, ({min_len} + ({row}::bigint * 7919) % {max_len - min_len + 1}) / 32 + 1) k)"
    )


def statements(scale: float) -> list[tuple[str, str]]:
    """(what, SQL) in build order; row counts scale linearly with ``scale``."""

    def n(rows: int) -> int:
        return max(1, int(rows * scale))

    vocab_rows = ", ".join(f"({i}, $w${w}$w$)" for i, w in enumerate(WORDS))
    steps: list[tuple[str, str]] = [
        (
            "schema",
            f"""
            CREATE SCHEMA shop; CREATE SCHEMA telemetry; CREATE SCHEMA ref;
            CREATE TABLE bench_vocab (n int PRIMARY KEY, word text NOT NULL);
            INSERT INTO bench_vocab VALUES {vocab_rows};
            CREATE TYPE shop.order_status AS ENUM ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'returned');
            CREATE TABLE shop.customer (
                id int PRIMARY KEY, name text NOT NULL, email text NOT NULL, country char(2) NOT NULL,
                created_at timestamptz NOT NULL, birth_date date, is_active boolean NOT NULL,
                tags text[], preferences jsonb, credit numeric(12, 2), address text);
            CREATE TABLE shop.product (
                id int PRIMARY KEY, sku text NOT NULL UNIQUE, title text NOT NULL, description text,
                price numeric(10, 2) NOT NULL, weight_kg real, attributes jsonb NOT NULL, image bytea,
                external_id uuid NOT NULL);
            CREATE TABLE shop.orders (
                id bigint PRIMARY KEY, customer_id int NOT NULL,
                created_at timestamptz NOT NULL, status shop.order_status NOT NULL,
                total numeric(12, 2) NOT NULL, currency char(3) NOT NULL, shipping jsonb, note text);
            CREATE TABLE shop.order_item (
                order_id bigint NOT NULL, line smallint NOT NULL,
                product_id int NOT NULL, quantity int NOT NULL,
                unit_price numeric(10, 2) NOT NULL, discount numeric(4, 3) NOT NULL DEFAULT 0,
                PRIMARY KEY (order_id, line));
            CREATE TABLE shop.review (
                id int PRIMARY KEY, product_id int NOT NULL, customer_id int NOT NULL, rating smallint NOT NULL,
                title text, body text NOT NULL, created_at timestamptz NOT NULL, helpful_votes int[]);
            CREATE TABLE shop.attachment (
                id int PRIMARY KEY, order_id bigint NOT NULL, filename text NOT NULL,
                mime text NOT NULL, content bytea NOT NULL);
            CREATE TABLE telemetry.event (
                id bigint PRIMARY KEY, occurred_at timestamptz NOT NULL, kind text NOT NULL,
                session_id uuid NOT NULL, client_ip inet, user_agent text, payload jsonb NOT NULL);
            CREATE TABLE telemetry.reading (
                device_id int NOT NULL, taken_at timestamp NOT NULL, temperature double precision,
                humidity real, pressure numeric(7, 2), samples real[], ok boolean,
                PRIMARY KEY (device_id, taken_at));
            """,
        ),
        (
            "shop.customer",
            f"""
            INSERT INTO shop.customer
            SELECT i, initcap({_WORD}) || ' ' || initcap({_WORD}),
                   'user' || i || '@' || (ARRAY['example.com','mail.test','firma.de','公司.cn'])[1 + i % 4],
                   (ARRAY['DE','FR','CN','US','GB','NL','IT','ES','PL','SE'])[1 + floor(power(random(), 2) * 10)::int],
                   timestamptz '2015-01-01 00:00+00' + random() * interval '3650 days',
                   CASE WHEN random() < 0.8 THEN date '1950-01-01' + floor(random() * 20000)::int END,
                   random() < 0.9,
                   ARRAY[{_WORD}, {_WORD}],
                   jsonb_build_object('newsletter', random() < 0.3, 'language',
                       (ARRAY['en','de','zh','fr'])[1 + floor(random() * 4)::int],
                       'theme', CASE WHEN random() < 0.5 THEN 'dark' ELSE 'light' END),
                   round((random() * 5000)::numeric, 2),
                   floor(random() * 300)::int || ' ' || initcap({_WORD}) || ' Street, ' || initcap({_WORD})
            FROM generate_series(1, {n(200_000)}) i, {_VOCAB};
            """,
        ),
        (
            "shop.product",
            f"""
            INSERT INTO shop.product
            SELECT i, 'SKU-' || lpad(i::text, 8, '0'), initcap({_sentence(4)}), {_sentence(60, 1200, 80)},
                   round((1 + power(random(), 3) * 2000)::numeric, 2), (random() * 30)::real,
                   jsonb_build_object('colour', {_WORD}, 'size', (ARRAY['S','M','L','XL'])[1 + i % 4],
                       'material', {_WORD}, 'dimensions', jsonb_build_array(i % 90, i % 60, i % 40),
                       'in_stock', random() < 0.85),
                   CASE WHEN i % 4 <> 0 THEN {_opaque_bytes("i", 300, 3000)} END,
                   md5('product' || i)::uuid
            FROM generate_series(1, {n(40_000)}) i, {_VOCAB};
            """,
        ),
        (
            "shop.orders",
            f"""
            INSERT INTO shop.orders
            SELECT i, 1 + floor(random() * {n(200_000)})::int,
                   timestamptz '2019-01-01 00:00+00' + i * interval '97 seconds' + random() * interval '1 hour',
                   (ARRAY['pending','paid','shipped','delivered','delivered','delivered','cancelled','returned'])
                       [1 + floor(random() * 8)::int]::shop.order_status,
                   round((5 + power(random(), 2) * 900)::numeric, 2),
                   (ARRAY['EUR','EUR','EUR','USD','CNY','GBP'])[1 + floor(random() * 6)::int],
                   CASE WHEN random() < 0.7 THEN jsonb_build_object('carrier',
                       (ARRAY['DHL','UPS','SF Express','DPD'])[1 + floor(random() * 4)::int],
                       'tracking', upper(substr(md5(i::text), 1, 14)), 'express', random() < 0.2) END,
                   CASE WHEN random() < 0.25 THEN {_sentence(12, 120)} END
            FROM generate_series(1, {n(1_200_000)}) i, {_VOCAB};
            """,
        ),
        (
            "shop.order_item",
            f"""
            INSERT INTO shop.order_item (order_id, line, product_id, quantity, unit_price, discount)
            SELECT o, l, 1 + floor(power(random(), 1.5) * {n(40_000)})::int, 1 + floor(power(random(), 4) * 10)::int,
                   round((1 + power(random(), 3) * 2000)::numeric, 2),
                   CASE WHEN random() < 0.2 THEN round((random() * 0.3)::numeric, 3) ELSE 0 END
            FROM generate_series(1, {n(1_200_000)}) o, generate_series(1, 1 + o % 4) l;
            """,
        ),
        (
            "shop.review",
            f"""
            INSERT INTO shop.review
            SELECT i, 1 + floor(power(random(), 2) * {n(40_000)})::int, 1 + floor(random() * {n(200_000)})::int,
                   1 + floor(power(random(), 0.6) * 5)::int,
                   CASE WHEN random() < 0.6 THEN initcap({_sentence(5)}) END, {_sentence(40, 700, 20)},
                   timestamptz '2018-01-01 00:00+00' + random() * interval '2500 days',
                   CASE WHEN random() < 0.3 THEN ARRAY[floor(random() * 50)::int, floor(random() * 5)::int] END
            FROM generate_series(1, {n(150_000)}) i, {_VOCAB};
            """,
        ),
        (
            "shop.attachment",
            f"""
            INSERT INTO shop.attachment
            SELECT i, 1 + (i * 37) % {n(1_200_000)}, 'scan_' || i || (ARRAY['.pdf','.jpg','.png'])[1 + i % 3],
                   (ARRAY['application/pdf','image/jpeg','image/png'])[1 + i % 3],
                   {_opaque_bytes("i", 1000, 12000)}
            FROM generate_series(1, {n(8_000)}) i;
            """,
        ),
        (
            "telemetry.event",
            f"""
            INSERT INTO telemetry.event
            SELECT i, timestamptz '2024-01-01 00:00+00' + i * interval '3 seconds',
                   (ARRAY['page_view','page_view','page_view','search','add_to_cart','checkout','login','error'])
                       [1 + floor(random() * 8)::int],
                   md5('session' || (i / 20))::uuid,
                   ('10.' || (i / 65536) % 256 || '.' || (i / 256) % 256 || '.' || i % 256)::inet,
                   (ARRAY['Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0',
                          'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0 Safari/537.36',
                          'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148'])[1 + i % 3],
                   jsonb_build_object('path', '/' || {_WORD} || '/' || {_WORD}, 'query', {_sentence(3)},
                       'duration_ms', floor(power(random(), 3) * 5000)::int, 'status',
                       (ARRAY[200, 200, 200, 200, 304, 404, 500])[1 + floor(random() * 7)::int],
                       'ab', jsonb_build_object('variant', (ARRAY['a','b'])[1 + i % 2], 'bucket', i % 100),
                       'items', jsonb_build_array(i % 997, i % 991))
            FROM generate_series(1, {n(500_000)}) i, {_VOCAB};
            """,
        ),
        (
            "telemetry.reading",
            f"""
            INSERT INTO telemetry.reading
            SELECT d, timestamp '2025-01-01' + t * interval '1 minute',
                   20 + 5 * sin(t / 200.0) + random(), (40 + random() * 20)::real,
                   round((1000 + random() * 30)::numeric, 2),
                   ARRAY[random()::real, random()::real, random()::real, random()::real], random() < 0.99
            FROM generate_series(1, 100) d, generate_series(1, {n(8_000)}) t;
            """,
        ),
    ]
    for k in range(30):
        rows = n(100 * (k + 1) ** 2)  # 100 .. 90,000 rows
        steps.append(
            (
                f"ref.code_{k:02d}",
                f"""
                CREATE TABLE ref.code_{k:02d} (
                    code text PRIMARY KEY, label text NOT NULL, description text, sort_order int,
                    valid_from date NOT NULL, valid_to date, flags boolean[], extra jsonb);
                INSERT INTO ref.code_{k:02d}
                SELECT 'C{k:02d}-' || lpad(i::text, 6, '0'), initcap({_sentence(2)}),
                       CASE WHEN i % 3 > 0 THEN {_sentence(10, 200)} END, i,
                       date '2000-01-01' + i % 9000, CASE WHEN i % 10 = 0 THEN date '2030-01-01' END,
                       ARRAY[i % 2 = 0, i % 3 = 0], CASE WHEN i % 5 = 0 THEN jsonb_build_object('k', {k}, 'i', i) END
                FROM generate_series(1, {rows}) i, {_VOCAB};
                """,
            )
        )
    steps.append(
        (
            "indexes and foreign keys",
            """
            CREATE INDEX ON shop.orders (customer_id);
            CREATE INDEX ON shop.orders (created_at);
            CREATE INDEX ON shop.order_item (product_id);
            CREATE INDEX ON shop.review (product_id);
            CREATE INDEX ON shop.customer (lower(email));
            CREATE INDEX ON shop.product USING gin (attributes);
            CREATE INDEX ON telemetry.event (occurred_at);
            CREATE INDEX ON telemetry.event USING gin (payload jsonb_path_ops);
            ALTER TABLE shop.orders ADD FOREIGN KEY (customer_id) REFERENCES shop.customer(id);
            ALTER TABLE shop.order_item ADD FOREIGN KEY (order_id) REFERENCES shop.orders(id);
            ALTER TABLE shop.order_item ADD FOREIGN KEY (product_id) REFERENCES shop.product(id);
            ALTER TABLE shop.review ADD FOREIGN KEY (product_id) REFERENCES shop.product(id);
            ALTER TABLE shop.review ADD FOREIGN KEY (customer_id) REFERENCES shop.customer(id);
            ALTER TABLE shop.attachment ADD FOREIGN KEY (order_id) REFERENCES shop.orders(id);
            """,
        )
    )
    steps.append(("vacuum analyze", "VACUUM ANALYZE"))
    return steps


def build(
    connect: Callable[[], psycopg2.extensions.connection], scale: float = 1.0, seed: float = 0.42
) -> None:
    """Create the tables and rows in an empty database, printing each step's time."""
    conn = connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SET max_parallel_workers_per_gather = 0; SET maintenance_work_mem = '256MB'")
            for what, statement in statements(scale):
                start = time.perf_counter()
                cur.execute("SELECT setseed(%s)", (seed,))
                cur.execute(statement)
                print(f"  {what}: {time.perf_counter() - start:.1f} s", flush=True)
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", required=True, help="libpq connection string of an empty database")
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    build(lambda: psycopg2.connect(args.dsn), args.scale)


if __name__ == "__main__":
    main()
