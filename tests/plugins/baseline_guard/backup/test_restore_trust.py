"""What a restore may drop, rename or close, on the real PostgreSQL server and S3 endpoint (issue 20).

The ledger drops only databases whose OID it recorded as created by the restore; derived names
stay distinct however long the database names; a swap that fails or is killed gives every
database back its own previous connection state.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from baseline_guard.backup import ledger
from baseline_guard.backup.swap import copy_name, swap_restored
from baseline_guard.errors import BackupError, InvalidInput
from restore_helpers import backup_of, prepare, value

ROOT = Path(__file__).resolve().parents[4]


# --- 1. the ledger drops only what it created -------------------------------------------------


def test_an_existing_database_at_the_copy_s_name_is_refused_and_never_dropped_by_a_later_clean_up(
    postgres, s3_client, bucket, conn_info, seeded_db, make_db, database_names
):
    """A caller who picks the run id picks the restore id: its copy name may be someone's database."""
    record = backup_of(s3_client, bucket, conn_info, seeded_db, "env/x/src.dump")
    target = make_db("aim", "CREATE TABLE t (v int)")
    run_id = f"manual__{target}"  # how restore ids were derived before: a hash of the caller's run id
    aimed_id = hashlib.sha256(f"test_data_restore/{run_id}".encode()).hexdigest()[:8]
    victim = copy_name(target, aimed_id)
    postgres.psql(f'CREATE DATABASE "{victim}"')
    postgres.psql("CREATE TABLE precious (v text); INSERT INTO precious VALUES ('mine');", victim)

    with pytest.raises(
        BackupError, match=rf"{victim} already exists and the restore ledger did not create it"
    ):
        prepare(s3_client, bucket, conn_info, record, target, aimed_id)
    prepare(s3_client, bucket, conn_info, record, target, "0000a1a1")  # the next restore cleans up

    assert victim in database_names()
    assert value(postgres, victim, "SELECT v FROM precious") == "mine"


def test_a_ledger_row_without_an_oid_never_drops_the_database_of_that_name(
    postgres, s3_client, bucket, conn_info, seeded_db, make_db, database_names
):
    """Fail closed: a row whose OID was never recorded (a crash right after CREATE DATABASE) drops nothing."""
    record = backup_of(s3_client, bucket, conn_info, seeded_db, "env/x/src.dump")
    target = make_db("nooid", "CREATE TABLE t (v int)")
    stranger = copy_name(target, "0000b2b2")
    admin = conn_info(target).connect("postgres")
    admin.autocommit = True
    ledger.ensure_ledger(admin)
    ledger.record_copy(admin, stranger, target, "0000b2b2")  # recorded, then killed: no OID
    admin.close()
    postgres.psql(f'CREATE DATABASE "{stranger}"')  # ours or a person's: the ledger cannot tell

    prepare(s3_client, bucket, conn_info, record, target, "0000b3b3")

    assert stranger in database_names()


def test_the_restore_id_of_a_run_is_not_derived_from_its_run_id():
    from baseline_guard.operators.restore import new_restore_id

    ids = {new_restore_id() for _ in range(64)}
    assert len(ids) == 64 and all(len(i) == 8 and int(i, 16) >= 0 for i in ids)


# --- 2. derived names stay distinct after shortening -------------------------------------------


def test_derived_names_of_long_names_that_share_a_prefix_differ_and_fit_63_bytes():
    from baseline_guard.backup.names import MAX_NAME_BYTES, derived_name
    from baseline_guard.protection.drill import scratch_database

    shared = "booking_inventory_reconciliation_ledger_archive_"  # 49 characters
    names = [shared + "2024", shared + "2025", "x" * 63, "x" * 62 + "y"]
    for derive in (lambda n: copy_name(n, "0000abcd"), lambda n: scratch_database(n, "0000abcd")):
        derived = [derive(n) for n in names]
        assert len(set(derived)) == len(names), derived
        assert all(len(d.encode()) <= MAX_NAME_BYTES for d in derived)
    assert copy_name("orders", "0000abcd") == "orders__restore_0000abcd"  # short names keep their form
    with pytest.raises(InvalidInput, match="letters, digits"):  # names are ASCII: bytes = characters
        derived_name("é" * 40, "old", "0000abcd")


def test_two_databases_sharing_their_first_50_characters_are_restored_together(
    postgres, s3_client, bucket, conn_info, make_db
):
    shared = "collide_" + secrets.token_hex(4) + "_" + "p" * 33  # 50 characters
    targets = [shared + "_alpha", shared + "_bravo"]
    for target in targets:
        postgres.create_database(target)
        postgres.psql("CREATE TABLE t AS SELECT 'old' AS v", target)
    sources = [
        make_db("srca", "CREATE TABLE t AS SELECT 'new alpha' AS v"),
        make_db("srcb", "CREATE TABLE t AS SELECT 'new bravo' AS v"),
    ]
    for source, target in zip(sources, targets, strict=True):
        record = backup_of(s3_client, bucket, conn_info, source, f"env/x/{source}.dump")
        prepare(s3_client, bucket, conn_info, record, target, "0000c4c4")

    swap_restored([conn_info(t) for t in targets], "0000c4c4", production=[])

    assert [value(postgres, t, "SELECT v FROM t") for t in targets] == ["new alpha", "new bravo"]


# --- 3. a swap that fails or is killed gives back each database's own connection state ---------


def _allowed(postgres, database: str) -> str:
    return value(postgres, "postgres", f"SELECT datallowconn FROM pg_database WHERE datname = '{database}'")


def _two_prepared_targets(postgres, s3_client, bucket, conn_info, seeded_db, make_db, restore_id):
    """An open target and one an admin closed on purpose, each with a verified copy of ``restore_id``."""
    record = backup_of(s3_client, bucket, conn_info, seeded_db, "env/x/src.dump")
    opened = make_db("open", "CREATE TABLE old_data (v text); INSERT INTO old_data VALUES ('old');")
    closed = make_db("closed", "CREATE TABLE old_data (v text); INSERT INTO old_data VALUES ('old');")
    postgres.psql(f'ALTER DATABASE "{closed}" WITH ALLOW_CONNECTIONS false')
    for target in (opened, closed):
        prepare(s3_client, bucket, conn_info, record, target, restore_id)
    return record, opened, closed


def test_a_swap_failing_after_the_close_gives_back_each_database_s_previous_state(
    postgres, s3_client, bucket, conn_info, seeded_db, make_db
):
    _, opened, closed = _two_prepared_targets(
        postgres, s3_client, bucket, conn_info, seeded_db, make_db, "0000d1d1"
    )

    def fail(step: str) -> None:
        if step == "closed":
            raise RuntimeError("worker lost its slot")

    with pytest.raises(RuntimeError, match="worker lost its slot"):
        swap_restored([conn_info(opened), conn_info(closed)], "0000d1d1", production=[], on_step=fail)

    assert [_allowed(postgres, opened), _allowed(postgres, closed)] == ["t", "f"]
    assert _allowed(postgres, copy_name(opened, "0000d1d1")) == "t"
    assert value(postgres, "postgres", "SELECT count(*) FROM baseline_guard.blocked_connections") == "0"
    swap_restored([conn_info(opened), conn_info(closed)], "0000d1d1", production=[])  # a retry swaps
    assert value(postgres, opened, "SELECT count(*) FROM shop.orders") == "4000"
    assert [_allowed(postgres, opened), _allowed(postgres, closed)] == ["t", "f"]  # closed on purpose: stays


def test_a_swap_whose_server_session_is_killed_reopens_through_a_new_session(
    postgres, s3_client, bucket, conn_info, seeded_db, make_db
):
    record = backup_of(s3_client, bucket, conn_info, seeded_db, "env/x/src.dump")
    target = make_db("lost", "CREATE TABLE old_data (v text); INSERT INTO old_data VALUES ('old');")
    prepare(s3_client, bucket, conn_info, record, target, "0000d2d2")

    def kill_the_swap_session(step: str) -> None:
        if step == "closed":  # the session holding the swap lock: the one that closed the databases
            postgres.psql(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                f"AND ((classid::bigint << 32) | objid::bigint) = {ledger.SWAP_LOCK}"
            )

    with pytest.raises(psycopg2.Error):
        swap_restored([conn_info(target)], "0000d2d2", production=[], on_step=kill_the_swap_session)

    assert _allowed(postgres, target) == "t"
    assert value(postgres, target, "SELECT v FROM old_data") == "old"


_KILLED_SWAP = """
import json, os, signal, sys
from baseline_guard.backup.pgtools import PgConnectionInfo
from baseline_guard.backup.swap import swap_restored

args = json.loads(sys.argv[1])

def crash(step):
    if step == "closed":
        os.kill(os.getpid(), signal.SIGKILL)

swap_restored([PgConnectionInfo(**t) for t in args["targets"]], args["restore_id"], production=[], on_step=crash)
"""


def test_a_swap_killed_with_the_databases_closed_is_undone_by_its_retry_to_each_previous_state(
    postgres, s3_client, bucket, conn_info, seeded_db, make_db
):
    _, opened, closed = _two_prepared_targets(
        postgres, s3_client, bucket, conn_info, seeded_db, make_db, "0000d3d3"
    )
    targets = [
        {
            "host": postgres.host,
            "port": postgres.port,
            "user": postgres.user,
            "database": d,
            "password": postgres.password,
        }
        for d in (opened, closed)
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "include")])}
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_SWAP, json.dumps({"targets": targets, "restore_id": "0000d3d3"})],
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    assert [_allowed(postgres, opened), _allowed(postgres, closed)] == ["f", "f"]  # killed: nothing ran

    swap_restored([conn_info(opened), conn_info(closed)], "0000d3d3", production=[])  # the task's retry

    assert [_allowed(postgres, opened), _allowed(postgres, closed)] == ["t", "f"]
    assert value(postgres, opened, "SELECT count(*) FROM shop.orders") == "4000"


def test_a_later_restore_on_the_server_reopens_only_what_a_killed_swap_closed(
    postgres, s3_client, bucket, conn_info, seeded_db, make_db
):
    record, opened, closed = _two_prepared_targets(
        postgres, s3_client, bucket, conn_info, seeded_db, make_db, "0000d4d4"
    )
    targets = [
        {
            "host": postgres.host,
            "port": postgres.port,
            "user": postgres.user,
            "database": d,
            "password": postgres.password,
        }
        for d in (opened, closed)
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "include")])}
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_SWAP, json.dumps({"targets": targets, "restore_id": "0000d4d4"})],
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]

    other = make_db("other", "CREATE TABLE t (v int)")
    prepare(s3_client, bucket, conn_info, record, other, "0000d5d5")  # another restore on that server

    assert [_allowed(postgres, opened), _allowed(postgres, closed)] == ["t", "f"]
    assert value(postgres, opened, "SELECT v FROM old_data") == "old"


def test_a_ledger_made_by_an_older_version_gets_the_state_columns(postgres, conn_info, make_db):
    maintenance = make_db("oldledger")
    postgres.psql(
        "CREATE SCHEMA baseline_guard; CREATE TABLE baseline_guard.blocked_connections ("
        "database_oid oid PRIMARY KEY, database_name text NOT NULL, restore_id text NOT NULL, "
        "recorded_at timestamptz NOT NULL DEFAULT now()); "
        "INSERT INTO baseline_guard.blocked_connections VALUES (1, 'x', '00000000')",
        maintenance,
    )
    admin = conn_info(maintenance).connect()
    admin.autocommit = True
    ledger.ensure_ledger(admin)
    ledger.ensure_ledger(admin)  # twice: nothing to add the second time

    assert ledger.blocked_state(admin, 1) == ledger.ConnectionState(allowed=True, connection_limit=None)
    admin.close()
