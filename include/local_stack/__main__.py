"""``python -m local_stack up | down | env | status | stop redis | start redis``: the whole local stack
with one command.

Ports come from ``BG_AIRFLOW_PORT`` (28080), ``BG_ENV_API_PORT`` (28081), ``BG_GATEWAY_PORT`` (28082),
``BG_S3_PORT`` (28083), ``BG_PG_PORT`` (28432), ``BG_AIRFLOW_WORKER_LOG_PORT`` (28084) and
``BG_AIRFLOW_TRIGGER_LOG_PORT`` (28085); with ``--celery`` also ``BG_REDIS_PORT`` (28379) and
``BG_AIRFLOW_WORKER2_LOG_PORT`` (28086).

``up --scale case-study`` starts the case study instead of the sandbox (``local_stack.case_study``),
in ``.local/case-study/stack``; pass that directory as ``--state-dir`` to ``down``, ``status`` and ``env``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from local_stack.airflow_env import shell_exports
from local_stack.config import CASE_STUDY_STATE_DIR, DEFAULT_STATE_DIR, SCALES, StackConfig
from local_stack.stack import read_pid_file, run_down, run_start_redis, run_stop_redis, run_up, stack_memory


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local_stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help=f"where the stack keeps its data, secrets and logs (default {DEFAULT_STATE_DIR}; "
        f"with --scale case-study {CASE_STUDY_STATE_DIR})",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start everything in the foreground; Ctrl-C or SIGTERM stops it")
    up.add_argument(
        "--no-airflow",
        action="store_true",
        help="start PostgreSQL, S3 and the reference environment API only",
    )
    up.add_argument(
        "--celery",
        action="store_true",
        help="Airflow on CeleryExecutor: Redis (BG_REDIS_PORT), two Celery workers, two schedulers, "
        "each component its own process (default: airflow standalone)",
    )
    up.add_argument(
        "--scale",
        choices=SCALES,
        default=None,
        help="sandbox (default: four services, real instance processes) or case-study (200 services x 2 "
        "lightweight instances, 20 project environments, 400 databases, 300 scenarios: generated, seeded)",
    )
    up.add_argument(
        "--airflow-timeout",
        type=float,
        default=600.0,
        help="seconds to wait for every Airflow component to be healthy (default 600)",
    )
    sub.add_parser("down", help="stop a stack started in another terminal")
    stop = sub.add_parser(
        "stop",
        help="stop one part of a running `up --celery` and keep it down until `start` (like `docker compose "
        "stop`); a part that exits by itself is started again by the stack",
    )
    stop.add_argument("part", choices=["redis"])
    stop.add_argument(
        "--kill",
        action="store_true",
        help="SIGKILL, as a crash would (default SIGTERM: Redis finishes writing first)",
    )
    start = sub.add_parser("start", help="start again a part that `stop` stopped")
    start.add_argument("part", choices=["redis"])
    sub.add_parser("status", help="say whether a stack runs, and its memory (RSS)")
    env = sub.add_parser(
        "env",
        help="print `export AIRFLOW_CONN_...` lines for a shell. They CONTAIN SECRETS "
        "(the Postgres password, the API token): do not paste them into logs or tickets",
    )
    env.add_argument(
        "--airflow",
        action="store_true",
        help="also AIRFLOW_HOME and the Airflow settings, so `airflow ...` uses the stack's Airflow",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = StackConfig.load(args.state_dir, scale=getattr(args, "scale", None))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "up":
        return run_up(
            config, with_airflow=not args.no_airflow, celery=args.celery, airflow_timeout=args.airflow_timeout
        )
    if args.command == "down":
        return run_down(config)
    if args.command == "stop":
        return run_stop_redis(config, kill=args.kill)
    if args.command == "start":
        return run_start_redis(config)
    if args.command == "env":
        print(shell_exports(config, full_airflow=args.airflow))
        return 0
    running = read_pid_file(config.pid_file)
    if running is None or not running.is_alive():
        print(f"No local stack is running from {config.state_dir}.")
        return 1
    memory = stack_memory(config, running.pid)
    print(f"Local stack running (pid {running.pid}); memory of all its processes: {memory.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
