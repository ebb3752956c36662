"""What to tell about one code sync, written for people. Pure logic, no Airflow."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def summary_title(outcome: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    return f"Baseline code sync: {len(outcome['changed'])} changed, {len(outcome['failed'])} failed"


def summary_body(outcome: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """One line per service: what it runs now, and for a failed one what was done and what to do."""
    lines = [f"✔ {c['service']} now runs {c['version']}" for c in outcome["changed"]]
    for f in outcome["failed"]:
        running = " and ".join(f["running"]) or "nothing"
        if len(f["running"]) == 1:
            lines.append(
                f"✘ {f['service']}: {f['version']} failed and was rolled back; it runs {running} "
                "(the rollout task's log says why)"
            )
        else:
            lines.append(
                f"✘ {f['service']}: {f['version']} failed and the rollback did not finish; its instances "
                f"run {running}: look at the instance left out of rotation"
            )
    return "\n".join(lines)
