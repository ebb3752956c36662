#!/usr/bin/env bash
# Starts the whole local stack (PostgreSQL seeded, S3, reference environment API + sandbox, Airflow)
# in the foreground; Ctrl-C stops it. Options: --no-airflow; --celery (Airflow on CeleryExecutor with
# Redis, two workers and two schedulers: docs/celery.md). Ports: BG_*_PORT (see the README).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_env.sh
for arg in "$@"; do
  if [ "$arg" = "--celery" ] && ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "Installing Redis (Debian's redis-server package) for the Celery mode ..."
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
    else
      echo "error: --celery needs redis-server: install it (e.g. sudo apt-get install redis-server)" >&2
      exit 2
    fi
  fi
done
exec uv run --frozen python -m local_stack up "$@"
