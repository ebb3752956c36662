"""``airflow standalone`` that keeps the configured auth manager and starts its components on cue.

Standalone replaces any configured auth manager with the SimpleAuthManager (development only). The
local stack runs the FAB-based auth manager production uses (``baseline_guard.auth_manager``), so
it starts standalone through this subclass. Before the components start, this same process (Airflow
already imported) migrates the metadata database and syncs the users and the CI role
(``baseline_guard.access``): no second interpreter, no race with the API server's own role sync.

The stack starts this process while it seeds the databases and starts S3 and the reference
environment; with ``BG_AIRFLOW_GATE`` set, the components wait for that file to exist (the rest of the
stack is up), so no DAG run starts against a half-started stack.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from airflow.cli.commands.standalone_command import StandaloneCommand

from local_stack.standalone_gate import (
    GATE_ENV,
    PASSWORDS_ENV,
    access_args,
    fab_perms_marker,
    wait_for_gate,
)


class StandaloneWithConfiguredAuth(StandaloneCommand):
    def calculate_env(self) -> dict[str, str]:
        # The stack already sets LocalExecutor; the auth manager stays the configured one.
        return dict(os.environ)

    def find_user_info(self) -> None:
        """Standalone would generate and print a SimpleAuthManager admin password here: not ours."""

    def initialize_database(self) -> None:
        super().initialize_database()
        passwords = os.environ.get(PASSWORDS_ENV)
        if passwords:
            from baseline_guard.access import main as sync_access

            home = Path(os.environ["AIRFLOW_HOME"])
            self.print_output("standalone", "Syncing the CI role and the users")
            if sync_access(access_args(passwords, home)) != 0:
                raise SystemExit("could not sync the Airflow users and the CI role (see above)")
            fab_perms_marker(home).touch()
        gate = os.environ.get(GATE_ENV)
        if gate:
            self.print_output("standalone", "Waiting for the rest of the stack")
            wait_for_gate(Path(gate))


if __name__ == "__main__":
    try:
        StandaloneWithConfiguredAuth().run()
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            sys.exit(1)
        raise
