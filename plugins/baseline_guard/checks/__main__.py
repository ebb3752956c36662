"""Command line: run business-check suites against an environment and print the summary table.

    python -m baseline_guard.checks --base-url http://127.0.0.1:8080 --environment baseline \\
        [--routing-key K] [--tags smoke,booking] [--suites include/scenarios] \\
        [--json out.json] [--junit out.xml] [--html out.html]

Exit status: 0 every scenario passed, 1 some failed, 2 bad input (suites, arguments).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from baseline_guard.checks.loader import load_suites
from baseline_guard.checks.reports import summary_table, write_reports
from baseline_guard.checks.runner import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT_S, run_checks
from baseline_guard.errors import InvalidInput

EXIT_PASSED, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_SUITES = Path("include/scenarios")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m baseline_guard.checks",
        description="Run business-check scenarios against an environment; say which module and interface broke.",
        epilog="Exit status: 0 all passed, 1 some scenario failed, 2 bad input.",
    )
    parser.add_argument(
        "--base-url", required=True, help="gateway of the environment, e.g. http://127.0.0.1:8080"
    )
    parser.add_argument(
        "--environment", required=True, help="name of the environment checked (e.g. baseline)"
    )
    parser.add_argument("--routing-key", help="X-Route-Key of a project environment")
    parser.add_argument("--tags", default="", help="comma-separated: run scenarios having any of these tags")
    parser.add_argument(
        "--suites", type=Path, default=DEFAULT_SUITES, help="suite file or directory of *.yaml"
    )
    parser.add_argument(
        "--var", action="append", default=[], metavar="NAME=VALUE", help="override a suite var"
    )
    parser.add_argument(
        "--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="scenarios in flight at once"
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="per-step timeout in seconds"
    )
    parser.add_argument("--json", type=Path, dest="json_path", help="write the JSON report here")
    parser.add_argument("--junit", type=Path, dest="junit_path", help="write the JUnit XML report here")
    parser.add_argument("--html", type=Path, dest="html_path", help="write the HTML report here")
    parser.add_argument("--only-failed", action="store_true", help="list only failed scenarios in the table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # exits 2 on bad arguments
    try:
        variables = _parse_vars(args.var)
        suites = load_suites(args.suites)
        run = run_checks(
            suites,
            args.base_url,
            environment=args.environment,
            routing_key=args.routing_key,
            tags=[t.strip() for t in args.tags.split(",") if t.strip()],
            concurrency=args.concurrency,
            timeout_s=args.timeout,
            variables=variables,
        )
    except InvalidInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(summary_table(run, only_failed=args.only_failed))
    for path in write_reports(
        run, json_path=args.json_path, junit_path=args.junit_path, html_path=args.html_path
    ):
        print(f"wrote {path}")
    return EXIT_PASSED if run.passed else EXIT_FAILED


def _parse_vars(pairs: Sequence[str]) -> dict[str, str]:
    variables = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"--var expects NAME=VALUE, got {pair!r}")
        variables[name.strip()] = value
    return variables


if __name__ == "__main__":
    sys.exit(main())
