#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs the pinned environment, lints, tests.
# Fails (non-zero) on any failure, including "no tests collected".
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_env.sh

# Headless Chromium (Debian's package) for the browser tests of the Baseline health page.
if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing chromium (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# Prometheus (Debian's package: promtool and prometheus) for the metrics' rule tests and the real scrape.
if ! command -v promtool >/dev/null 2>&1; then
  echo "== installing prometheus (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
fi

# Redis (Debian's package) for the Celery mode's tests (the e2e stack and its Redis supervisor).
if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
  echo "== installing redis-server (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi

echo "== ruff"
uv run --frozen ruff check .
uv run --frozen ruff format --check .

echo "== pytest"
# Two lanes (pytest-xdist): one worker runs the whole-Airflow-stack modules one after another, the
# other the rest of the suite, folder by folder (tests/conftest.py makes the scopes). The stacks
# mostly wait on Airflow's scheduler, so the rest of the suite fits into those waits.
set +e
uv run --frozen pytest --numprocesses 2 --dist loadscope --no-loadscope-reorder "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$rc"
