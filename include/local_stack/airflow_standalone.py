"""``airflow standalone`` that keeps the configured auth manager.

Standalone replaces any configured auth manager with the SimpleAuthManager (development only). The
local stack runs the FAB-based auth manager production uses (``baseline_guard.auth_manager``), so
it starts standalone through this subclass; its users and roles come from ``baseline_guard.access``.
"""

from __future__ import annotations

import os

from airflow.cli.commands.standalone_command import StandaloneCommand


class StandaloneWithConfiguredAuth(StandaloneCommand):
    def calculate_env(self) -> dict[str, str]:
        # The stack already sets LocalExecutor; the auth manager stays the configured one.
        return dict(os.environ)

    def find_user_info(self) -> None:
        """Standalone would generate and print a SimpleAuthManager admin password here: not ours."""


if __name__ == "__main__":
    StandaloneWithConfiguredAuth().run()
