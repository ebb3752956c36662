"""The host name Airflow records for a process (``[core] hostname_callable``).

The local stack's two Celery workers run on one machine; each gets its own name from
``BASELINE_GUARD_HOSTNAME`` so a task instance's ``hostname`` says which worker ran it (in
docker-compose every container has its own host name and this is not used).
"""

from __future__ import annotations

import os
import socket

HOSTNAME_ENV = "BASELINE_GUARD_HOSTNAME"


def from_environment() -> str:
    return os.environ.get(HOSTNAME_ENV) or socket.getfqdn()
