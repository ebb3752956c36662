"""``python -m baseline_guard.health migrate``: create or upgrade the check-history schema.

The database comes from ``--url``, else ``BASELINE_GUARD_DB_URL``, else the Airflow connection
``AIRFLOW_CONN_BASELINE_GUARD_DB`` (JSON or URI form).

``import-state --config-digests FILE --patrol-incidents FILE`` copies, once, the state the DAGs kept in
Airflow Variables before revision 0003 (``airflow variables get baseline_guard_config_digests > FILE``)
into its tables; rows already there are kept, the Variables are left as they are (delete them by hand).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from baseline_guard.health import migrate
from baseline_guard.health.dburl import CONN_ID, dsn_from_environment


def _json_object(path: str) -> dict[str, Any]:
    value = json.loads(Path(path).read_text())
    if not isinstance(value, dict):
        raise ValueError(
            f"{path}: expected a JSON object keyed by service or instance, got {type(value).__name__}"
        )
    return value


def import_state(dsn: str, config_digests: str | None, patrol_incidents: str | None) -> str:
    from baseline_guard.health.guard_state import ConfigDecisionStore, PatrolIncidentStore, connect

    conn = connect(dsn, connect_timeout=10)
    try:
        done = []
        if config_digests:
            added = ConfigDecisionStore(conn).import_records(_json_object(config_digests))
            done.append(f"{added} config decision record(s)")
        if patrol_incidents:
            added = PatrolIncidentStore(conn).import_incidents(_json_object(patrol_incidents))
            done.append(f"{added} patrol incident(s)")
    finally:
        conn.close()
    return "imported " + (", ".join(done) or "nothing (give --config-digests and/or --patrol-incidents)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m baseline_guard.health", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (
        ("migrate", "upgrade the schema to the newest revision"),
        ("current", "print the schema revision the database is at"),
        ("import-state", "copy the old Variables' JSON (decisions, incidents) into their tables, once"),
    ):
        cmd = sub.add_parser(name, help=help_)
        cmd.add_argument("--url", help="postgresql:// URL (default: from the environment)")
        cmd.add_argument(
            "--conn-id", default=CONN_ID, help="Airflow connection id to read from AIRFLOW_CONN_*"
        )
        if name == "import-state":
            cmd.add_argument("--config-digests", help="JSON of the Variable baseline_guard_config_digests")
            cmd.add_argument(
                "--patrol-incidents", help="JSON of the Variable baseline_guard_patrol_incidents"
            )
    args = parser.parse_args(argv)
    try:
        dsn = args.url or dsn_from_environment(args.conn_id)
    except LookupError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.command == "migrate":
        migrate.upgrade(dsn)
    if args.command == "import-state":
        try:
            print(import_state(dsn, args.config_digests, args.patrol_incidents))
        except (OSError, ValueError) as exc:
            print(exc, file=sys.stderr)
            return 2
        return 0
    print(
        f"check-history schema at revision {migrate.current_revision(dsn)} (head {migrate.head_revision()})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
