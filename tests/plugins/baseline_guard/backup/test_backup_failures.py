"""A failed backup leaves nothing behind: no object, no record, no multipart parts; existing keys stay."""

from __future__ import annotations

import hashlib

import pytest
from baseline_guard.backup import backup_database
from baseline_guard.backup.s3io import MIB
from baseline_guard.errors import BackupExists, ChecksumMismatch, InvalidInput, PgToolFailed, ToolVersionError
from botocore.exceptions import BotoCoreError, ClientError
from local_stack.postgres import PG_BIN_DIR

KEY = "backups/env-a/20250101T000000Z-pre_test-00000000/app.dump"
RECORD = KEY.removesuffix(".dump") + ".dump.json"
BIG_TABLE_SQL = (
    "CREATE TABLE blob AS SELECT i, repeat(md5(i::text), 4) AS filler FROM generate_series(1, 110000) i;"
)


def _nothing_left(s3_client, bucket: str) -> None:
    assert s3_client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_an_existing_key_is_never_overwritten(s3_client, bucket, conn_info, seeded_db):
    s3_client.put_object(Bucket=bucket, Key=KEY, Body=b"someone else's object")

    for reuse in (True, False):
        with pytest.raises(BackupExists, match="never overwritten"):
            backup_database(
                s3_client,
                source=conn_info(seeded_db),
                bucket=bucket,
                key=KEY,
                reuse_existing=reuse,
                compression="none",
                pg_bin_dir=PG_BIN_DIR,
            )

    assert s3_client.get_object(Bucket=bucket, Key=KEY)["Body"].read() == b"someone else's object"
    assert s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_retry_reuses_the_complete_dump_and_checks_it(s3_client, bucket, conn_info, seeded_db):
    first = backup_database(
        s3_client,
        source=conn_info(seeded_db),
        bucket=bucket,
        key=KEY,
        compression="none",
        pg_bin_dir=PG_BIN_DIR,
    )
    stamp = s3_client.head_object(Bucket=bucket, Key=KEY)["LastModified"]

    again = backup_database(
        s3_client,
        source=conn_info(seeded_db),
        bucket=bucket,
        key=KEY,
        compression="none",
        pg_bin_dir=PG_BIN_DIR,
    )

    assert (first.reused, again.reused) == (False, True)
    assert again.record == first.record
    assert s3_client.head_object(Bucket=bucket, Key=KEY)["LastModified"] == stamp

    data = bytearray(s3_client.get_object(Bucket=bucket, Key=KEY)["Body"].read())
    data[-10] ^= 0xFF
    s3_client.put_object(Bucket=bucket, Key=KEY, Body=bytes(data))
    with pytest.raises(ChecksumMismatch, match="sha256"):
        backup_database(
            s3_client,
            source=conn_info(seeded_db),
            bucket=bucket,
            key=KEY,
            compression="none",
            pg_bin_dir=PG_BIN_DIR,
        )
    assert (
        hashlib.sha256(s3_client.get_object(Bucket=bucket, Key=KEY)["Body"].read()).digest()
        == hashlib.sha256(bytes(data)).digest()
    )


def test_a_pg_dump_older_than_the_server_is_refused(s3_client, bucket, conn_info, seeded_db, fake_pg_bin):
    bin_dir = fake_pg_bin('echo "pg_dump (PostgreSQL) 12.0"; [ "$1" = --version ] || exit 1\n')

    with pytest.raises(ToolVersionError) as caught:
        backup_database(
            s3_client,
            source=conn_info(seeded_db),
            bucket=bucket,
            key=KEY,
            compression="gzip",
            pg_bin_dir=bin_dir,
        )

    assert "pg_dump 12.0 is older than the server (PostgreSQL 18)" in str(caught.value)
    assert ">= 18" in str(caught.value)
    _nothing_left(s3_client, bucket)


def test_pg_dump_dying_mid_stream_aborts_the_upload_and_keeps_the_password_out(
    s3_client, bucket, conn_info, seeded_db, fake_pg_bin, postgres, monkeypatch
):
    monkeypatch.setenv("AIRFLOW_CONN_WORKER_SECRET", "postgres://u:worker-secret@h/db")
    bin_dir = fake_pg_bin(
        'if [ "$1" = --version ]; then echo "pg_dump (PostgreSQL) 18.6"; exit 0; fi\n'
        'dir=$(dirname "$0")\n'
        'printf "%s\\n" "$@" > "$dir/argv"; env > "$dir/env"\n'
        "head -c 12582912 /dev/urandom\n"
        'echo "pg_dump: error: server closed the connection unexpectedly" >&2\n'
        "exit 3\n"
    )
    parts_seen: list[int] = []

    with pytest.raises(PgToolFailed) as caught:
        backup_database(
            s3_client,
            source=conn_info(seeded_db),
            bucket=bucket,
            key=KEY,
            compression="gzip:1",
            part_size=5 * MIB,
            pg_bin_dir=bin_dir,
            progress=lambda p: parts_seen.append(p.bytes_done),
            progress_every=5 * MIB,
        )

    assert "exited with status 3" in str(caught.value)
    assert "server closed the connection unexpectedly" in str(caught.value)
    assert parts_seen == [5 * MIB, 10 * MIB]  # parts went up before the exit status was seen
    _nothing_left(s3_client, bucket)
    argv = (bin_dir / "argv").read_text()
    env = dict(line.split("=", 1) for line in (bin_dir / "env").read_text().splitlines() if "=" in line)
    assert postgres.password not in argv
    # the child gets a minimal environment: the password only as PGPASSWORD, nothing of the worker's
    assert env["PGPASSWORD"] == postgres.password and env["PGPASSFILE"] == "/dev/null"
    assert "worker-secret" not in "".join(env.values())
    assert not [k for k in env if k.startswith("AIRFLOW")]
    assert set(env) - {"PWD", "SHLVL", "_", "OLDPWD"} <= {
        "PATH",
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "LC_MESSAGES",
        "TZ",
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGAPPNAME",
        "PGCONNECT_TIMEOUT",
        "PGPASSFILE",
        "PGPASSWORD",
    }


def test_a_real_pg_dump_error_is_reported_without_the_password(
    s3_client, bucket, conn_info, seeded_db, postgres
):
    role, password = f"reader_{seeded_db[-8:]}", f"pw-{seeded_db}"
    postgres.psql(
        f"CREATE ROLE {role} LOGIN PASSWORD '{password}'; GRANT USAGE ON SCHEMA shop TO {role};", seeded_db
    )
    source = conn_info(seeded_db)
    reader = type(source)(
        host=source.host, port=source.port, user=role, password=password, database=seeded_db
    )

    with pytest.raises(PgToolFailed) as caught:
        backup_database(
            s3_client, source=reader, bucket=bucket, key=KEY, compression="none", pg_bin_dir=PG_BIN_DIR
        )

    assert "permission denied" in str(caught.value)
    assert password not in str(caught.value)
    _nothing_left(s3_client, bucket)


def test_an_s3_endpoint_failing_mid_upload_leaves_no_object_and_no_parts(
    s3_client, bucket, conn_info, big_db, faulty_s3
):
    front = faulty_s3(2)

    with pytest.raises((ClientError, BotoCoreError)):
        backup_database(
            front.client(),
            source=conn_info(big_db),
            bucket=bucket,
            key=KEY,
            compression="none",
            part_size=5 * MIB,
            pg_bin_dir=PG_BIN_DIR,
        )

    assert front.broken_requests >= 1
    _nothing_left(s3_client, bucket)  # read straight from the live server, not through the broken front


def test_an_interrupt_during_the_stream_aborts_the_upload(s3_client, bucket, conn_info, big_db):

    def interrupt(progress) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        backup_database(
            s3_client,
            source=conn_info(big_db),
            bucket=bucket,
            key=KEY,
            compression="none",
            part_size=5 * MIB,
            progress=interrupt,
            progress_every=5 * MIB,
            pg_bin_dir=PG_BIN_DIR,
        )

    _nothing_left(s3_client, bucket)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"compression": "brotli"}, "expected auto, none, gzip"),
        ({"compression": "gzip:12"}, "gzip level must be 0-9"),
        ({"compression": "lz4:3"}, "built without lz4 support"),
        ({"compression": "zstd:23"}, "zstd level must be 1-22"),
        ({"part_size": MIB}, "at least 5242880"),
        ({"key": "backups/env-a/"}, "expected a bucket name and an object key"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(
    s3_client, bucket, conn_info, seeded_db, kwargs, message
):
    args = {"source": conn_info(seeded_db), "bucket": bucket, "key": KEY, "pg_bin_dir": PG_BIN_DIR, **kwargs}
    with pytest.raises((InvalidInput, ToolVersionError), match=message):
        backup_database(s3_client, **args)
    _nothing_left(s3_client, bucket)
