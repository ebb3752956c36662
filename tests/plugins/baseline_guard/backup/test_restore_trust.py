"""What a restore may drop, rename or close, on the real PostgreSQL server and S3 endpoint (issue 20).

The ledger drops only databases whose OID it recorded as created by the restore; derived names
stay distinct however long the database names; a swap that fails or is killed gives every
database back its own previous connection state.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import pytest
from baseline_guard.backup import ExpectedDump, backup_database, ledger
from baseline_guard.backup.restore import prepare_restore
from baseline_guard.backup.swap import copy_name, swap_restored
from baseline_guard.errors import BackupError, InvalidInput
from local_stack.postgres import PG_BIN_DIR

ROOT = Path(__file__).resolve().parents[4]


def _backup(s3_client, bucket, conn_info, database, key):
    return backup_database(
        s3_client,
        source=conn_info(database),
        bucket=bucket,
        key=key,
        compression="none",
        pg_bin_dir=PG_BIN_DIR,
    ).record


def _prepare(s3_client, bucket, conn_info, record, target, restore_id, **kwargs):
    return prepare_restore(
        s3_client,
        bucket=bucket,
        key=record.key,
        expected=kwargs.pop("expected", None) or ExpectedDump.from_record(record),
        target=conn_info(target),
        production=kwargs.pop("production", []),
        restore_id=restore_id,
        pg_bin_dir=PG_BIN_DIR,
        **kwargs,
    )


def _value(postgres, database: str, sql: str) -> str:
    return postgres.psql(sql, database).strip()


# --- 1. the ledger drops only what it created -------------------------------------------------


def test_an_existing_database_at_the_copy_s_name_is_refused_and_never_dropped_by_a_later_clean_up(
    postgres, s3_client, bucket, conn_info, seeded_db, make_db, database_names
):
    """A caller who picks the run id picks the restore id: its copy name may be someone's database."""
    record = _backup(s3_client, bucket, conn_info, seeded_db, "env/x/src.dump")
    target = make_db("aim", "CREATE TABLE t (v int)")
    run_id = f"manual__{target}"  # how restore ids were derived before: a hash of the caller's run id
    aimed_id = hashlib.sha256(f"test_data_restore/{run_id}".encode()).hexdigest()[:8]
    victim = copy_name(target, aimed_id)
    postgres.psql(f'CREATE DATABASE "{victim}"')
    postgres.psql("CREATE TABLE precious (v text); INSERT INTO precious VALUES ('mine');", victim)

    with pytest.raises(
        BackupError, match=rf"{victim} already exists and the restore ledger did not create it"
    ):
        _prepare(s3_client, bucket, conn_info, record, target, aimed_id)
    _prepare(s3_client, bucket, conn_info, record, target, "0000a1a1")  # the next restore cleans up

    assert victim in database_names()
    assert _value(postgres, victim, "SELECT v FROM precious") == "mine"


def test_a_ledger_row_without_an_oid_never_drops_the_database_of_that_name(
    postgres, s3_client, bucket, conn_info, seeded_db, make_db, database_names
):
    """Fail closed: a row whose OID was never recorded (a crash right after CREATE DATABASE) drops nothing."""
    record = _backup(s3_client, bucket, conn_info, seeded_db, "env/x/src.dump")
    target = make_db("nooid", "CREATE TABLE t (v int)")
    stranger = copy_name(target, "0000b2b2")
    admin = conn_info(target).connect("postgres")
    admin.autocommit = True
    ledger.ensure_ledger(admin)
    ledger.record_copy(admin, stranger, target, "0000b2b2")  # recorded, then killed: no OID
    admin.close()
    postgres.psql(f'CREATE DATABASE "{stranger}"')  # ours or a person's: the ledger cannot tell

    _prepare(s3_client, bucket, conn_info, record, target, "0000b3b3")

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
        record = _backup(s3_client, bucket, conn_info, source, f"env/x/{source}.dump")
        _prepare(s3_client, bucket, conn_info, record, target, "0000c4c4")

    swap_restored([conn_info(t) for t in targets], "0000c4c4", production=[])

    assert [_value(postgres, t, "SELECT v FROM t") for t in targets] == ["new alpha", "new bravo"]
