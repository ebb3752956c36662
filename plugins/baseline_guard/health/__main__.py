"""``python -m baseline_guard.health migrate``: create or upgrade the check-history schema.

The database comes from ``--url``, else ``BASELINE_GUARD_DB_URL``, else the Airflow connection
``AIRFLOW_CONN_BASELINE_GUARD_DB`` (JSON or URI form).
"""

from __future__ import annotations

import argparse
import sys

from baseline_guard.health import migrate
from baseline_guard.health.dburl import CONN_ID, dsn_from_environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m baseline_guard.health", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (
        ("migrate", "upgrade the schema to the newest revision"),
        ("current", "print the schema revision the database is at"),
    ):
        cmd = sub.add_parser(name, help=help_)
        cmd.add_argument("--url", help="postgresql:// URL (default: from the environment)")
        cmd.add_argument(
            "--conn-id", default=CONN_ID, help="Airflow connection id to read from AIRFLOW_CONN_*"
        )
    args = parser.parse_args(argv)
    try:
        dsn = args.url or dsn_from_environment(args.conn_id)
    except LookupError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.command == "migrate":
        migrate.upgrade(dsn)
    print(
        f"check-history schema at revision {migrate.current_revision(dsn)} (head {migrate.head_revision()})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
