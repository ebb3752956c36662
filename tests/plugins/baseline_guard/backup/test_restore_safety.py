"""Restore safety on the real PostgreSQL server and S3 endpoint: all-or-nothing, names, identity, crashes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from baseline_guard.backup import ExpectedDump, restore_database
from baseline_guard.backup.identity import DatabaseIdentity, identify
from baseline_guard.backup.names import conninfo_value, dbname_target
from baseline_guard.backup.pgtools import PgConnectionInfo
from baseline_guard.backup.restore import prepare_restore
from baseline_guard.backup.swap import copy_name, old_name, swap_restored
from baseline_guard.errors import (
    ChecksumMismatch,
    InvalidInput,
    PgToolFailed,
    ProductionWriteRefused,
    RestoreAborted,
    TargetNotIdentified,
)
from local_stack.postgres import PG_BIN_DIR
from restore_helpers import backup_of, prepare, value

ROOT = Path(__file__).resolve().parents[4]


def test_environment_restore_swaps_nothing_when_one_dump_is_corrupt(
    postgres, s3_client, bucket, conn_info, make_db, database_names
):
    sources = [
        make_db("srca", "CREATE TABLE t AS SELECT 'new a' AS v"),
        make_db("srcb", "CREATE TABLE t AS SELECT 'new b' AS v"),
    ]
    targets = [
        make_db("tgta", "CREATE TABLE t AS SELECT 'old a' AS v"),
        make_db("tgtb", "CREATE TABLE t AS SELECT 'old b' AS v"),
    ]
    records = [backup_of(s3_client, bucket, conn_info, s, f"env/x/{s}.dump") for s in sources]
    data = bytearray(s3_client.get_object(Bucket=bucket, Key=records[1].key)["Body"].read())
    data[len(data) // 2] ^= 0x01
    s3_client.put_object(Bucket=bucket, Key=records[1].key, Body=bytes(data))

    prepare(s3_client, bucket, conn_info, records[0], targets[0], "0000aaaa")
    assert copy_name(targets[0], "0000aaaa") in database_names()  # verified, waiting for the swap
    with pytest.raises(ChecksumMismatch):
        prepare(s3_client, bucket, conn_info, records[1], targets[1], "0000aaaa")
    with pytest.raises(RestoreAborted) as aborted:
        swap_restored([conn_info(t) for t in targets], "0000aaaa", production=[])

    message = str(aborted.value)
    assert "no database was swapped" in message and f"{targets[1]}: its restore failed" in message
    assert "sha256" in message and targets[0] not in message.split("because")[1]
    assert [value(postgres, t, "SELECT v FROM t") for t in targets] == ["old a", "old b"]
    assert not {n for n in database_names() if "__restore_" in n and n.startswith(("tgta", "tgtb"))}


def test_all_verified_copies_are_swapped_in_together(postgres, s3_client, bucket, conn_info, make_db):
    sources = [
        make_db("srca", "CREATE TABLE t AS SELECT 'new a' AS v"),
        make_db("srcb", "CREATE TABLE t AS SELECT 'new b' AS v"),
    ]
    targets = [
        make_db("tgta", "CREATE TABLE t AS SELECT 'old a' AS v"),
        make_db("tgtb", "CREATE TABLE t AS SELECT 'old b' AS v"),
    ]
    for source, target in zip(sources, targets, strict=True):
        record = backup_of(s3_client, bucket, conn_info, source, f"env/x/{source}.dump")
        prepare(s3_client, bucket, conn_info, record, target, "0000bbbb")
    assert [value(postgres, t, "SELECT v FROM t") for t in targets] == ["old a", "old b"]

    outcomes = swap_restored([conn_info(t) for t in targets], "0000bbbb", production=[])
    again = swap_restored([conn_info(t) for t in targets], "0000bbbb", production=[])  # a retry

    assert [value(postgres, t, "SELECT v FROM t") for t in targets] == ["new a", "new b"]
    assert [o.replaced_existing and not o.already_swapped for o in outcomes] == [True, True]
    assert [o.already_swapped for o in again] == [True, True]


def test_a_name_read_as_a_connection_string_is_refused_and_the_victim_stays_untouched(
    postgres, s3_client, bucket, conn_info, seeded_db, make_db, plain_dump, database_names
):
    record = backup_of(s3_client, bucket, conn_info, seeded_db, "env/x/src.dump")
    victim = make_db("victim", "CREATE TABLE precious (v text); INSERT INTO precious VALUES ('mine');")
    before, databases_before = plain_dump(victim), database_names()

    for hostile in (f"dbname={victim} application_name=x", f"postgresql:///{victim}", f"{victim}\n", "-d x"):
        with pytest.raises(InvalidInput, match="never read as a connection string"):
            restore_database(
                s3_client,
                bucket=bucket,
                key=record.key,
                expected=ExpectedDump.from_record(record),
                target=PgConnectionInfo(postgres.host, postgres.port, postgres.user, victim).with_database(
                    hostile
                ),
                production=[],
                pg_bin_dir=PG_BIN_DIR,
            )

    assert plain_dump(victim) == before and database_names() == databases_before
    assert dbname_target("db.ok-1") == "dbname='db.ok-1'" and conninfo_value("it's\\") == "'it\\'s\\\\'"


def test_a_person_s_look_alike_databases_survive_and_recorded_leftovers_go(
    postgres, s3_client, bucket, conn_info, seeded_db, make_db, database_names
):
    record = backup_of(s3_client, bucket, conn_info, seeded_db, "env/x/src.dump")
    target = make_db("keep", "CREATE TABLE t (v int)")
    look_alikes = [f"{target}__old_20250101", f"{target}__restore_deadbeef", f"{target}__old_cafebabe"]
    for name in look_alikes:
        postgres.psql(f'CREATE DATABASE "{name}"')
    with pytest.raises(ChecksumMismatch):  # a restore that fails leaves nothing
        prepare(
            s3_client, bucket, conn_info, record, target, "0000cccc", expected=ExpectedDump(sha256="0" * 64)
        )
    prepare(s3_client, bucket, conn_info, record, target, "0000dddd")  # a verified copy never swapped in

    restore_database(
        s3_client,
        bucket=bucket,
        key=record.key,
        expected=ExpectedDump.from_record(record),
        target=conn_info(target),
        production=[],
        pg_bin_dir=PG_BIN_DIR,
    )

    names = database_names()
    assert set(look_alikes) <= names
    assert copy_name(target, "0000dddd") not in names and copy_name(target, "0000cccc") not in names
    assert value(postgres, target, "SELECT count(*) FROM shop.orders") == "4000"


def test_a_session_in_the_restored_copy_does_not_block_the_swap(
    postgres, s3_client, bucket, conn_info, seeded_db, make_db
):
    record = backup_of(s3_client, bucket, conn_info, seeded_db, "env/x/src.dump")
    target = make_db("busy", "CREATE TABLE stale (x int)")
    prepare(s3_client, bucket, conn_info, record, target, "0000eeee")
    in_copy = conn_info(target).connect(copy_name(target, "0000eeee"))
    in_target = conn_info(target).connect()

    swap_restored([conn_info(target)], "0000eeee", production=[], timeout_s=5)

    assert value(postgres, target, "SELECT count(*) FROM shop.customer") == "1500"
    for conn in (in_copy, in_target):
        with pytest.raises(psycopg2.OperationalError):
            conn.cursor().execute("SELECT 1")
    assert (
        value(postgres, "postgres", f"SELECT datallowconn FROM pg_database WHERE datname = '{target}'") == "t"
    )


def test_production_is_refused_by_identity_whatever_the_label(
    postgres, s3_client, bucket, conn_info, seeded_db, make_db, database_names, plain_dump
):
    record = backup_of(s3_client, bucket, conn_info, seeded_db, "env/x/src.dump")
    prod = make_db("prod", "CREATE TABLE precious (v text); INSERT INTO precious VALUES ('prod data');")
    listed = identify(conn_info(prod), "postgres", "production/booking")
    aliased = PgConnectionInfo("localhost", postgres.port, postgres.user, prod, postgres.password)
    before, databases_before = plain_dump(prod), database_names()

    for target, kind in ((conn_info(prod), "baseline"), (aliased, None)):
        with pytest.raises(ProductionWriteRefused, match=r"is production database .*production/booking"):
            restore_database(
                s3_client,
                bucket=bucket,
                key=record.key,
                expected=ExpectedDump.from_record(record),
                target=target,
                production=[listed],
                target_kind=kind,
                pg_bin_dir=PG_BIN_DIR,
            )
    by_address = DatabaseIdentity(postgres.host, postgres.port, prod, system_identifier=None)
    with pytest.raises(ProductionWriteRefused):
        prepare(s3_client, bucket, conn_info, record, prod, "0000ffff", production=[by_address])
    with pytest.raises(ProductionWriteRefused):  # the swap step checks again, before it writes
        swap_restored([aliased], "0000ffff", production=[listed])

    assert plain_dump(prod) == before and database_names() == databases_before
    other = make_db("notprod")
    prepare(s3_client, bucket, conn_info, record, other, "0000ffff", production=[listed])  # same server: fine


def test_a_target_whose_server_cannot_be_identified_is_refused(
    s3_client, bucket, conn_info, seeded_db, postgres
):
    record = backup_of(s3_client, bucket, conn_info, seeded_db, "env/x/src.dump")
    unreachable = PgConnectionInfo(
        "127.0.0.1", 1, postgres.user, "anything", postgres.password, connect_timeout=2
    )

    with pytest.raises(TargetNotIdentified, match="cannot reach the server of anything"):
        restore_database(
            s3_client,
            bucket=bucket,
            key=record.key,
            expected=ExpectedDump.from_record(record),
            target=unreachable,
            production=[],
            pg_bin_dir=PG_BIN_DIR,
        )


PROPERTIES_SQL = """
CREATE SCHEMA app; CREATE TABLE app.fare (id int); INSERT INTO app.fare VALUES (1), (2);
"""


def test_database_properties_survive_a_restore(postgres, s3_client, bucket, conn_info, make_db):
    source = make_db("propsrc", PROPERTIES_SQL)
    reader = f"reader_{source[-8:]}"
    postgres.psql(
        f"CREATE ROLE {reader} LOGIN PASSWORD 'r'; CREATE ROLE outsider_{source[-8:]} LOGIN PASSWORD 'o';"
        f'REVOKE CONNECT ON DATABASE "{source}" FROM PUBLIC; GRANT CONNECT ON DATABASE "{source}" TO {reader};'
        f'ALTER DATABASE "{source}" SET search_path = app, "$user", public;'
        f"ALTER ROLE {reader} IN DATABASE \"{source}\" SET statement_timeout = '7s';"
        f"COMMENT ON DATABASE \"{source}\" IS 'fares, restored nightly';"
        f'ALTER DATABASE "{source}" CONNECTION LIMIT 7;'
    )
    postgres.psql(f"GRANT USAGE ON SCHEMA app TO {reader}; GRANT SELECT ON app.fare TO {reader};", source)
    record = backup_of(s3_client, bucket, conn_info, source, "env/x/props.dump")
    target = make_db("proptgt", "CREATE TABLE old (v int)")

    assert record.database_properties is not None and record.database_properties.connection_limit == 7
    restore_database(
        s3_client,
        bucket=bucket,
        key=record.key,
        expected=ExpectedDump.from_record(record),
        target=conn_info(target),
        production=[],
        pg_bin_dir=PG_BIN_DIR,
    )

    def connect(role: str, password: str) -> psycopg2.extensions.connection:
        return psycopg2.connect(
            host=postgres.host, port=postgres.port, user=role, password=password, dbname=target
        )

    with pytest.raises(psycopg2.OperationalError, match="permission denied"):
        connect(f"outsider_{source[-8:]}", "o")
    with connect(reader, "r") as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM fare")  # unqualified: found through the restored search_path
        assert cur.fetchone()[0] == 2
        cur.execute("SHOW statement_timeout")
        assert cur.fetchone()[0] == "7s"
    row = value(
        postgres,
        "postgres",
        f"SELECT datconnlimit, shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{target}'",
    )
    assert row == "7|fares, restored nightly"


def test_a_backup_without_recorded_properties_keeps_the_target_s_own(
    postgres, s3_client, bucket, conn_info, make_db
):
    source = make_db("oldsrc", PROPERTIES_SQL)
    record = backup_of(s3_client, bucket, conn_info, source, "env/x/old.dump")
    old_style = record.model_copy(update={"database_properties": None})
    old_style = type(record).model_validate_json(old_style.model_dump_json(exclude={"database_properties"}))
    target = make_db("oldtgt")
    postgres.psql(
        f'REVOKE CONNECT ON DATABASE "{target}" FROM PUBLIC; ALTER DATABASE "{target}" SET search_path = app;'
    )

    restore_database(
        s3_client,
        bucket=bucket,
        key=record.key,
        expected=ExpectedDump.from_record(old_style),
        target=conn_info(target),
        production=[],
        pg_bin_dir=PG_BIN_DIR,
    )

    assert old_style.database_properties is None
    acl = value(postgres, "postgres", f"SELECT datacl::text FROM pg_database WHERE datname = '{target}'")
    assert "=c" not in acl.replace("=CTc", "")  # PUBLIC (empty grantee) still has no CONNECT
    assert value(postgres, target, "SELECT count(*) FROM fare") == "2"


_CRASHING_RESTORE = """
import json, os, signal, sys
import boto3
from baseline_guard.backup import ExpectedDump, restore_database
from baseline_guard.backup.manifest import DumpRecord
from baseline_guard.backup.pgtools import PgConnectionInfo

args = json.loads(sys.argv[1])

def crash(step):
    if step == args["crash_at"]:
        os.kill(os.getpid(), signal.SIGKILL)

restore_database(
    boto3.client("s3", **args["s3"]), bucket=args["bucket"], key=args["key"], restore_id=args["restore_id"],
    expected=ExpectedDump.from_record(DumpRecord.model_validate_json(args["record"])),
    target=PgConnectionInfo(**args["target"]), production=[], pg_bin_dir=args["bin"], on_swap_step=crash,
)
"""


@pytest.mark.parametrize("crash_at", ["closed", "swapped"])
def test_a_worker_killed_during_the_swap_leaves_the_database_whole_and_the_next_run_recovers(
    crash_at, postgres, s3, s3_client, bucket, conn_info, seeded_db, make_db, database_names
):
    record = backup_of(s3_client, bucket, conn_info, seeded_db, "env/x/src.dump")
    target = make_db("crash", "CREATE TABLE old_data (v text); INSERT INTO old_data VALUES ('old');")
    args = {
        "target": {
            "host": postgres.host,
            "port": postgres.port,
            "user": postgres.user,
            "database": target,
            "password": postgres.password,
        },
        "s3": _s3_kwargs(s3),
        "bucket": bucket,
        "key": record.key,
        "record": record.model_dump_json(),
        "restore_id": "0000abcd",
        "crash_at": crash_at,
        "bin": str(PG_BIN_DIR),
    }
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "include")])}
    killed = subprocess.run(
        [sys.executable, "-c", _CRASHING_RESTORE, json.dumps(args)], env=env, capture_output=True, timeout=300
    )
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]

    allowed = f"SELECT datallowconn FROM pg_database WHERE datname = '{target}'"
    if crash_at == "closed":  # killed with the database closed to connections, before the renames
        assert value(postgres, "postgres", allowed) == "f"
        postgres.psql(f'ALTER DATABASE "{target}" WITH ALLOW_CONNECTIONS true')  # look inside: wholly old
        assert value(postgres, target, "SELECT v FROM old_data") == "old"
        postgres.psql(f'ALTER DATABASE "{target}" WITH ALLOW_CONNECTIONS false')
    else:  # killed after the swap committed, before the old copy was dropped: wholly new, connectable
        assert value(postgres, "postgres", allowed) == "t"
        assert value(postgres, target, "SELECT count(*) FROM shop.orders") == "4000"
        assert old_name(target, "0000abcd") in database_names()

    restore_database(
        s3_client,
        bucket=bucket,
        key=record.key,
        expected=ExpectedDump.from_record(record),
        target=conn_info(target),
        production=[],
        pg_bin_dir=PG_BIN_DIR,
    )

    assert value(postgres, "postgres", allowed) == "t"
    assert value(postgres, target, "SELECT count(*) FROM shop.orders") == "4000"
    assert not {n for n in database_names() if n.startswith(f"{target}__")}


def _s3_kwargs(s3) -> dict[str, str]:
    from local_stack.s3 import ACCESS_KEY, REGION, SECRET_KEY

    return {
        "endpoint_url": s3.endpoint_url,
        "region_name": REGION,
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
    }


def test_a_session_the_swap_cannot_end_names_the_busy_database_and_keeps_the_old_one(
    postgres, s3_client, bucket, conn_info, seeded_db, make_db
):
    """A restoring role without superuser cannot end a superuser's session: the wait is bounded."""
    from baseline_guard.backup import ledger
    from baseline_guard.errors import DatabaseBusy

    record = backup_of(s3_client, bucket, conn_info, seeded_db, "env/x/src.dump")
    role = f"restorer_{record.sha256[:8]}"
    target = make_db("owned", "CREATE TABLE old_data (v text); INSERT INTO old_data VALUES ('old');")
    admin = conn_info(target).connect("postgres")
    admin.autocommit = True
    ledger.ensure_ledger(admin)
    admin.close()
    postgres.psql(
        f"CREATE ROLE {role} LOGIN CREATEDB PASSWORD 'pw'; ALTER DATABASE \"{target}\" OWNER TO {role};"
        f"GRANT CREATE ON DATABASE postgres TO {role}; GRANT USAGE, CREATE ON SCHEMA baseline_guard TO {role};"
        f"GRANT ALL ON ALL TABLES IN SCHEMA baseline_guard TO {role};"
    )
    as_role = PgConnectionInfo(postgres.host, postgres.port, role, target, "pw")
    prepare_restore(
        s3_client,
        bucket=bucket,
        key=record.key,
        expected=ExpectedDump.from_record(record),
        target=as_role,
        production=[],
        restore_id="0000b05e",
        no_owner=True,
        pg_bin_dir=PG_BIN_DIR,
    )
    superuser_in_copy = conn_info(target).connect(copy_name(target, "0000b05e"))

    with pytest.raises(
        DatabaseBusy, match=rf"restored copy {copy_name(target, '0000b05e')} \(of {target}\) is busy"
    ):
        swap_restored([as_role], "0000b05e", production=[], timeout_s=1)

    superuser_in_copy.close()
    assert value(postgres, target, "SELECT v FROM old_data") == "old"  # connectable, wholly old
    assert value(postgres, "postgres", "SELECT count(*) FROM baseline_guard.blocked_connections") == "0"
    swap_restored([as_role], "0000b05e", production=[], timeout_s=5)  # a retry, once the session is gone
    assert value(postgres, target, "SELECT count(*) FROM shop.orders") == "4000"


def test_pg_restore_stopping_early_on_a_sound_streamed_dump_is_not_called_tampered(
    postgres, s3_client, bucket, conn_info, big_db, make_db, tmp_path
):
    record = backup_of(s3_client, bucket, conn_info, big_db, "env/x/big.dump")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pg_restore"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = --version ]; then echo "pg_restore (PostgreSQL) 18.6"; exit 0; fi\n'
        "head -c 65536 >/dev/null\n"
        'echo "pg_restore: error: could not execute query: ERROR:  out of shared memory" >&2\n'
        "exit 1\n"
    )
    script.chmod(0o755)
    target = make_db("early", "CREATE TABLE t AS SELECT 'old' AS v")

    with pytest.raises(PgToolFailed) as caught:
        restore_database(
            s3_client,
            bucket=bucket,
            key=record.key,
            expected=ExpectedDump.from_record(record),
            target=conn_info(target),
            production=[],
            pg_bin_dir=bin_dir,
            spool=False,
        )

    message = str(caught.value) + "".join(getattr(caught.value, "__notes__", []))
    assert "out of shared memory" in message and "exited with status 1" in message
    assert "tampered" not in message and "sha256" not in message
    assert value(postgres, target, "SELECT v FROM t") == "old"
