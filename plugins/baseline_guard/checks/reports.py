"""Reports of a business-check run: JSON, JUnit XML, and a fixed-width summary for a task log.

The HTML page is in :mod:`baseline_guard.checks.html_report`; the lines both name broken
interfaces and suspect instances with are in :mod:`baseline_guard.checks.findings`.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from baseline_guard.checks.findings import broken_lines, failing_instances, suspect_lines
from baseline_guard.checks.html_report import to_html
from baseline_guard.checks.results import CheckRun, Failure, ScenarioResult, StepStatus

_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def summary(run: CheckRun) -> dict[str, Any]:
    """Counts and the broken interfaces, most-broken first (the head of the JSON report)."""
    return {
        "passed": run.passed,
        "scenarios": len(run.scenarios),
        "passed_scenarios": run.passed_count,
        "failed_scenarios": len(run.failed_scenarios),
        "broken": [
            {
                "module": module,
                "interface": interface,
                "scenarios": count,
                "instances": failing_instances(run, module, interface),
            }
            for module, interface, count in run.broken_interfaces()
        ],
        "suspects": [suspect.model_dump() for suspect in run.suspects()],
    }


def to_json(run: CheckRun) -> str:
    """The whole run as JSON, with a ``summary`` first."""
    document = {"summary": summary(run), **run.model_dump(mode="json")}
    return json.dumps(document, indent=2, ensure_ascii=False)


def failure_headline(failure: Failure) -> str:
    """``pricing · POST /quotes: $.total is 130.0, expected 390.0``."""
    return f"{failure.where}: {failure.message}"


def failure_details(failure: Failure) -> str:
    """Multi-line details of a failure (request, response excerpt, trace id, instance)."""
    lines = [
        f"step {failure.step_number} '{failure.step}' ({failure.kind.value}) at {failure.where}",
        f"check: {failure.check}",
        f"expected: {_short(failure.expected)}",
        f"actual: {_short(failure.actual)}",
        f"trace id: {failure.trace_id}",
    ]
    if failure.instance_label:
        lines.append(f"answered by: {failure.instance_label}")
    if failure.request:
        lines.append(f"request: {failure.request.method} {failure.request.url}")
        if failure.request.body is not None:
            lines.append(f"request body: {json.dumps(failure.request.body, ensure_ascii=False)}")
    if failure.response:
        lines.append(f"response: {failure.response.status} in {failure.response.elapsed_ms:.0f} ms")
        more = " [truncated]" if failure.response.body_truncated else ""
        lines.append(f"response body{more}: {failure.response.body_excerpt}")
    return "\n".join(lines)


def to_junit_xml(run: CheckRun) -> str:
    """JUnit XML: one ``testsuite`` per suite file, one ``testcase`` per scenario."""
    root = ET.Element(
        "testsuites",
        name=f"business checks: {run.environment}",
        tests=str(len(run.scenarios)),
        failures=str(len(run.failed_scenarios)),
        errors="0",
        time=f"{run.duration_ms / 1000:.3f}",
        timestamp=run.started_at.isoformat(timespec="seconds"),
    )
    by_suite: dict[str, list[ScenarioResult]] = {}
    for scenario in run.scenarios:
        by_suite.setdefault(scenario.suite, []).append(scenario)
    for suite_name, scenarios in by_suite.items():
        failed = sum(1 for s in scenarios if not s.passed)
        element = ET.SubElement(
            root,
            "testsuite",
            name=suite_name,
            tests=str(len(scenarios)),
            failures=str(failed),
            errors="0",
            skipped="0",
            time=f"{sum(s.duration_ms for s in scenarios) / 1000:.3f}",
            timestamp=run.started_at.isoformat(timespec="seconds"),
        )
        properties = ET.SubElement(element, "properties")
        for name, value in (
            ("environment", run.environment),
            ("routing_key", run.routing_key or ""),
            ("base_url", run.base_url),
        ):
            ET.SubElement(properties, "property", name=name, value=_xml_text(value))
        for scenario in scenarios:
            case = ET.SubElement(
                element,
                "testcase",
                name=scenario.name,
                classname=f"business_checks.{suite_name}",
                time=f"{scenario.duration_ms / 1000:.3f}",
            )
            if scenario.failure:
                failure = ET.SubElement(
                    case,
                    "failure",
                    message=_xml_text(failure_headline(scenario.failure)),
                    type=scenario.failure.kind.value,
                )
                failure.text = _xml_text(failure_details(scenario.failure))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def summary_table(run: CheckRun, *, width: int = 140, only_failed: bool = False) -> str:
    """A fixed-width summary for a task log: header, broken interfaces, one row per scenario (failed first)."""
    failed = len(run.failed_scenarios)
    verdict = "all passed" if run.passed else f"{failed} FAILED"
    head = (
        f"Business checks on {run.environment}"
        + (f" (routing key {run.routing_key})" if run.routing_key else "")
        + f": {len(run.scenarios)} scenarios, {run.passed_count} passed, {verdict}"
        + f" in {run.duration_ms / 1000:.2f} s"
    )
    lines = [head]
    for line in broken_lines(run):
        lines.append(f"  BROKEN  {line}")
    for line in suspect_lines(run):
        lines.append(f"  SUSPECT {line}")
    widths = {
        "suite": max([5] + [len(s.suite) for s in run.scenarios]),
        "scenario": min(40, max([8] + [len(s.name) for s in run.scenarios])),
    }
    fixed = widths["suite"] + widths["scenario"] + 6 + 7 + 9 + 5 * 2
    why_width = max(20, width - fixed)
    header = (
        f"{'SUITE':<{widths['suite']}}  {'SCENARIO':<{widths['scenario']}}  {'RESULT':<6}  "
        f"{'STEPS':>7}  {'TIME':>9}  WHERE / WHY"
    )
    lines += ["", header, "-" * min(width, len(header) + why_width - 11)]
    rows = sorted(run.scenarios, key=lambda s: (s.passed, s.suite, s.name))
    for scenario in rows:
        if only_failed and scenario.passed:
            continue
        done = sum(1 for s in scenario.steps if s.status is StepStatus.PASSED)
        why = failure_headline(scenario.failure) if scenario.failure else ""
        lines.append(
            f"{scenario.suite:<{widths['suite']}}  {_cut(scenario.name, widths['scenario']):<{widths['scenario']}}  "
            f"{'PASS' if scenario.passed else 'FAIL':<6}  {f'{done}/{len(scenario.steps)}':>7}  "
            f"{f'{scenario.duration_ms:.0f} ms':>9}  {_cut(why.replace(chr(10), ' '), why_width)}"
        )
    return "\n".join(lines)


def write_reports(
    run: CheckRun,
    *,
    json_path: str | Path | None = None,
    junit_path: str | Path | None = None,
    html_path: str | Path | None = None,
) -> list[Path]:
    """Write the reports asked for (creating parent directories); return the paths written."""
    written = []
    for path, render in ((json_path, to_json), (junit_path, to_junit_xml), (html_path, to_html)):
        if path is None:
            continue
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(run), encoding="utf-8")
        written.append(target)
    return written


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return _cut(text, limit)


def _xml_text(text: str) -> str:
    return _XML_ILLEGAL.sub("?", text)
