"""Fixtures for the backup engine tests: buckets, seeded databases, fake pg tools, a faulty S3 front."""

from __future__ import annotations

import http.client
import re
import secrets
import socket
import stat
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from baseline_guard.backup import PgConnectionInfo
from local_stack.postgres import PG_BIN_DIR, LocalPostgres
from local_stack.s3 import LocalS3
from pagila_data import fill_pagila

SEED_SQL = """
CREATE SCHEMA shop;
CREATE TYPE shop.status AS ENUM ('new', 'paid', 'shipped');
CREATE TABLE shop.customer (
    id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE, joined timestamptz NOT NULL,
    tags text[], profile jsonb, avatar bytea);
CREATE TABLE shop.orders (
    id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES shop.customer(id),
    amount numeric(12, 2) NOT NULL, status shop.status NOT NULL DEFAULT 'new', note text);
CREATE INDEX orders_customer_idx ON shop.orders (customer_id);
CREATE VIEW shop.big_orders AS SELECT * FROM shop.orders WHERE amount > 500;
COMMENT ON TABLE shop.orders IS 'orders, one row per checkout';
CREATE TABLE public.settings (key text PRIMARY KEY, value text);
INSERT INTO shop.customer (name, email, joined, tags, profile, avatar)
SELECT 'Kunde ' || i || ' — ü漢', 'c' || i || '@example.test', timestamptz '2024-01-01 00:00+00' + i * interval '1 hour',
       ARRAY['t' || (i % 7), 'x'], jsonb_build_object('i', i, 'vip', i % 10 = 0),
       CASE WHEN i % 3 = 0 THEN NULL ELSE decode(md5(i::text), 'hex') END
FROM generate_series(1, 1500) i;
INSERT INTO shop.orders (customer_id, amount, status, note)
SELECT 1 + (i % 1500), (i * 37 % 100000) / 100.0, (ARRAY['new','paid','shipped'])[1 + i % 3]::shop.status,
       CASE WHEN i % 5 = 0 THEN NULL ELSE repeat('n', i % 40) END
FROM generate_series(1, 4000) i;
INSERT INTO public.settings VALUES ('currency', 'EUR'), ('tax', '0.19');
SELECT setval('shop.orders_id_seq', 5000);
"""


def unique_name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


@pytest.fixture
def bucket(s3: LocalS3) -> str:
    name = f"bg-backup-{secrets.token_hex(4)}"
    s3.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_client(s3: LocalS3):
    return s3.client()


@pytest.fixture
def make_db(postgres: LocalPostgres) -> Callable[..., str]:
    """Create a fresh database, optionally seeded with ``sql``; returns its name."""

    def create(prefix: str = "db", sql: str | None = None) -> str:
        name = unique_name(prefix)
        postgres.create_database(name)
        if sql:
            postgres.psql(sql, name)
        return name

    return create


@pytest.fixture
def big_db(make_db: Callable[..., str]) -> str:
    """About 14 MiB of incompressible-ish rows: three 5 MiB parts when dumped without compression."""
    return make_db(
        "big",
        "CREATE TABLE blob AS SELECT i, repeat(md5(i::text), 4) AS filler FROM generate_series(1, 110000) i;",
    )


@pytest.fixture
def seeded_db(make_db: Callable[..., str]) -> str:
    return make_db("src", SEED_SQL)


@pytest.fixture
def pagila_db(make_db: Callable[..., str], conn_info: Callable[[str], PgConnectionInfo]) -> str:
    """The pagila sample schema with rows, large objects, an empty table and an empty partition."""
    name = make_db("pagila")
    fill_pagila(conn_info(name))
    return name


@pytest.fixture
def conn_info(postgres: LocalPostgres) -> Callable[[str], PgConnectionInfo]:
    def info(database: str) -> PgConnectionInfo:
        return PgConnectionInfo(
            host=postgres.host,
            port=postgres.port,
            user=postgres.user,
            password=postgres.password,
            database=database,
        )

    return info


def _plain_dump(postgres: LocalPostgres, database: str) -> str:
    out = subprocess.run(
        [str(PG_BIN_DIR / "pg_dump"), "--no-owner", "-d", database],
        capture_output=True,
        text=True,
        env=postgres.env(),
        check=True,
        timeout=120,
    )
    keep = [
        line
        for line in out.stdout.splitlines()
        if not line.startswith("--") and not re.match(r"^\\(un)?restrict ", line)
    ]
    return "\n".join(keep)


@pytest.fixture
def plain_dump(postgres: LocalPostgres) -> Callable[[str], str]:
    """Plain-SQL dump of a database without the lines that differ per run (comments, \\restrict keys)."""
    return lambda database: _plain_dump(postgres, database)


@pytest.fixture
def database_names(postgres: LocalPostgres) -> Callable[[], set[str]]:
    return lambda: set(postgres.psql("SELECT datname FROM pg_database").split())


@pytest.fixture
def fake_pg_bin(tmp_path: Path) -> Callable[[str], Path]:
    """A bin dir whose ``pg_dump``/``pg_restore`` is a shell script; real tools are linked beside it."""

    def make(pg_dump_script: str) -> Path:
        bin_dir = tmp_path / f"bin_{secrets.token_hex(3)}"
        bin_dir.mkdir()
        (bin_dir / "pg_restore").symlink_to(PG_BIN_DIR / "pg_restore")
        script = bin_dir / "pg_dump"
        script.write_text("#!/bin/sh\n" + pg_dump_script)
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return bin_dir

    return make


class FaultyS3Front:
    """An HTTP front to the real moto server that drops the requests ``fails(method, path)`` picks.

    A dropped request gets its connection closed with no answer, as when an endpoint fails
    mid-upload. Other requests are passed through, unless ``dies``: then every request after the
    first dropped one fails too (the endpoint is gone; not even an abort gets through). Either way
    the storage behind it lives on, so what was left can be read from the live server.
    """

    def __init__(self, backend_port: int, fails: Callable[[str, str], bool], dies: bool = False) -> None:
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if fails(self.command, self.path) or (front.dies and front.broken_requests):
                    front.broken_requests += 1
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", backend_port, timeout=60)
                upstream.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response_only(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

        self.dies = dies
        self.broken_requests = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def client(self):
        import boto3
        from botocore.config import Config
        from local_stack.s3 import ACCESS_KEY, REGION, SECRET_KEY

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(retries={"max_attempts": 2, "mode": "standard"}),
        )


def part_upload_from(number: int) -> Callable[[str, str], bool]:
    """Picks UploadPart requests of part ``number`` and later."""

    def fails(method: str, path: str) -> bool:
        part = re.search(r"[?&]partNumber=(\d+)", path)
        return method == "PUT" and part is not None and int(part.group(1)) >= number

    return fails


@pytest.fixture
def faulty_s3(s3: LocalS3) -> Iterator[Callable[..., FaultyS3Front]]:
    """Factory: ``faulty_s3(fail_from_part=2)`` or ``faulty_s3(fails=predicate, dies=True)``."""
    fronts: list[FaultyS3Front] = []

    def make(
        fail_from_part: int | None = None,
        *,
        fails: Callable[[str, str], bool] | None = None,
        dies: bool = False,
    ) -> FaultyS3Front:
        predicate = fails or part_upload_from(fail_from_part or 1)
        front = FaultyS3Front(s3.port, predicate, dies)
        front.thread.start()
        fronts.append(front)
        return front

    yield make
    for front in fronts:
        front.server.shutdown()
        front.server.server_close()
