"""What a business-check run found, as lines for people: broken interfaces and suspect instances.

Shared by every report (log table, JUnit, HTML) and the failure message.
"""

from __future__ import annotations

from baseline_guard.checks.results import CheckRun


def broken_lines(run: CheckRun) -> list[str]:
    """``pricing · POST /quotes (12 scenarios) on baseline/quote/2 v1.9.2-wrong``, one per broken interface."""
    lines = []
    for module, interface, count in run.broken_interfaces():
        line = f"{module} · {interface} ({count} scenario{'s' if count != 1 else ''})"
        instances = failing_instances(run, module, interface)
        if instances:
            line += " on " + ", ".join(instances)
        lines.append(line)
    return lines


def suspect_lines(run: CheckRun) -> list[str]:
    """``baseline/quote/2 v1.9.2-wrong: pricing · POST /quotes failed 8 of 9 calls; other instances 0 of 11``."""
    return [
        f"{s.instance}: {s.module} · {s.interface} failed {s.failed} of {s.failed + s.succeeded} calls; "
        f"other instances {s.others_failed} of {s.others_failed + s.others_succeeded}"
        for s in run.suspects()
    ]


def failing_instances(run: CheckRun, module: str, interface: str) -> list[str]:
    """The instances that failed ``module · interface``, most failures first."""
    for row in run.interface_health():
        if (row.module, row.interface) == (module, interface):
            return sorted(row.failed_on, key=lambda k: (-row.failed_on[k], k))
    return []
