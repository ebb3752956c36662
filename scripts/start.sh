#!/usr/bin/env bash
# Starts the whole local stack (PostgreSQL seeded, S3, reference environment API + sandbox, Airflow)
# in the foreground; Ctrl-C stops it. Options: --no-airflow. Ports: BG_*_PORT (see the README).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_env.sh
exec uv run --frozen python -m local_stack up "$@"
