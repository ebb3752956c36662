#!/usr/bin/env bash
# Type-checks the project with mypy ([tool.mypy] in pyproject.toml: strict for the engines, the default
# level for operators, hooks, DAGs and include/). Extra arguments go to mypy; its cache is .mypy_cache/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_env.sh
uv run --frozen mypy "$@"
