"""Results of a business-check run: what passed, and for what failed, exactly where and why.

A failed step stops its scenario and records a :class:`Failure`: the module and interface, the
request (secrets redacted), a response excerpt, the failed assertion (expected vs actual), the trace
id, and the ``X-Service``/``X-Instance``/``X-Version`` headers of the instance that answered.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class StepStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_RUN = "not_run"


class FailureKind(StrEnum):
    ASSERTION = "assertion"  # the service answered, but not as the scenario expects
    TRANSPORT = "transport"  # no answer: connection refused/reset, protocol error
    TIMEOUT = "timeout"  # no answer within the step timeout
    TEMPLATE = "template"  # a variable could not be rendered (e.g. arithmetic on a captured string)
    CAPTURE = "capture"  # a value to capture was not in the response


class RequestRecord(BaseModel):
    method: str
    url: str
    headers: dict[str, str] = Field(description="Headers sent; Authorization and other secrets redacted.")
    body: Any = None


class ResponseRecord(BaseModel):
    status: int
    headers: dict[str, str] = Field(default_factory=dict, description="X-Service, X-Instance, X-Version, ...")
    body_excerpt: str = Field(default="", description="The first ~2 KB of the body, as text.")
    body_truncated: bool = False
    elapsed_ms: float


class Failure(BaseModel):
    kind: FailureKind
    module: str
    interface: str
    step: str
    step_number: int = Field(description="1-based position of the step in its scenario.")
    check: str = Field(description="What was checked, e.g. 'status', '$.total equals_expr price * 3'.")
    expected: Any = None
    actual: Any = None
    message: str
    trace_id: str
    request: RequestRecord | None = None
    response: ResponseRecord | None = None
    service: str | None = Field(default=None, description="X-Service of the instance that answered.")
    instance: str | None = Field(default=None, description="X-Instance, e.g. baseline/quote/2.")
    version: str | None = Field(default=None, description="X-Version of the instance that answered.")

    @property
    def where(self) -> str:
        """``pricing · POST /quotes``."""
        return f"{self.module} · {self.interface}"

    @property
    def instance_label(self) -> str:
        """``baseline/quote/2 v1.4.1`` or ``""`` when the answer carried no instance headers."""
        parts = [p for p in (self.instance, f"v{self.version}" if self.version else None) if p]
        return " ".join(parts)


class StepResult(BaseModel):
    name: str
    module: str
    interface: str
    status: StepStatus
    duration_ms: float = 0.0
    attempts: int = 0
    http_status: int | None = None
    instance: str | None = None
    version: str | None = None


class ScenarioResult(BaseModel):
    name: str
    suite: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    passed: bool
    trace_id: str
    duration_ms: float
    steps: list[StepResult]
    failure: Failure | None = None


class InterfaceHealth(BaseModel):
    """How one module interface fared across the run, and on which instances."""

    module: str
    interface: str
    passed: int = 0
    failed: int = 0
    not_run: int = 0
    failed_on: dict[str, int] = Field(default_factory=dict, description="instance (and version) -> failures")
    passed_on: dict[str, int] = Field(default_factory=dict, description="instance (and version) -> passes")
    succeeded_on: dict[str, int] = Field(
        default_factory=dict,
        description="instance (and version) -> passes with a 2xx answer (not negative cases)",
    )


MIN_SUSPECT_FAILURES = 3


class Suspect(BaseModel):
    """An instance that fails an interface most of the time while the other instances mostly succeed:
    most likely the broken one (e.g. the instance a rollout just deployed), not a victim downstream.

    Only passed steps with a 2xx answer count as successes (a wrong version still passes negative
    cases such as a 404 for an unknown hotel). A suspect fails at least half of its calls of the
    interface (and at least ``MIN_SUSPECT_FAILURES`` times), and the other instances together fail at
    most half as often and succeed at least once. Failures further down the business chain are often
    victims (a quote fails because the hotel-detail instance it called is broken), so only suspects
    of the first module in chain order that has any are named.
    """

    instance: str = Field(description="Instance and version, e.g. 'baseline/quote/2 v1.9.2-wrong'.")
    module: str
    interface: str
    failed: int
    succeeded: int = Field(description="Passed 2xx answers of the interface by this instance.")
    others_failed: int
    others_succeeded: int = Field(description="Passed 2xx answers of the same interface by other instances.")


class CheckRun(BaseModel):
    environment: str
    routing_key: str | None = None
    base_url: str
    tags: list[str] = Field(default_factory=list, description="Tag filter the run used (empty: all).")
    started_at: datetime
    duration_ms: float
    scenarios: list[ScenarioResult]

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.scenarios)

    @property
    def failed_scenarios(self) -> list[ScenarioResult]:
        return [s for s in self.scenarios if not s.passed]

    @property
    def passed_count(self) -> int:
        return sum(1 for s in self.scenarios if s.passed)

    def broken_modules(self) -> dict[str, dict[str, list[str]]]:
        """module -> interface -> names of the scenarios that broke there (most-broken first)."""
        broken: dict[str, dict[str, list[str]]] = {}
        for scenario in self.failed_scenarios:
            assert scenario.failure is not None
            where = broken.setdefault(scenario.failure.module, {})
            where.setdefault(scenario.failure.interface, []).append(scenario.name)
        ordered = sorted(broken.items(), key=lambda kv: -sum(len(v) for v in kv[1].values()))
        return {m: dict(sorted(i.items(), key=lambda kv: -len(kv[1]))) for m, i in ordered}

    def broken_interfaces(self) -> list[tuple[str, str, int]]:
        """``(module, interface, failed scenario count)``, most-broken first."""
        counts = Counter((s.failure.module, s.failure.interface) for s in self.failed_scenarios if s.failure)
        return [(m, i, n) for (m, i), n in counts.most_common()]

    def interface_health(self) -> list[InterfaceHealth]:
        """Per module interface: passes, failures, and which instances answered them.

        When one instance of a service fails and the other passes the same interface, this names
        the bad instance (and version) even though round robin spread the scenarios over both.
        """
        table: dict[tuple[str, str], InterfaceHealth] = {}
        for scenario in self.scenarios:
            for step in scenario.steps:
                row = table.setdefault(
                    (step.module, step.interface),
                    InterfaceHealth(module=step.module, interface=step.interface),
                )
                label = " ".join(
                    p for p in (step.instance, f"v{step.version}" if step.version else None) if p
                )
                if step.status is StepStatus.PASSED:
                    row.passed += 1
                    if label:
                        row.passed_on[label] = row.passed_on.get(label, 0) + 1
                        if step.http_status is not None and 200 <= step.http_status < 300:
                            row.succeeded_on[label] = row.succeeded_on.get(label, 0) + 1
                elif step.status is StepStatus.FAILED:
                    row.failed += 1
                    if label:
                        row.failed_on[label] = row.failed_on.get(label, 0) + 1
                else:
                    row.not_run += 1
        return list(table.values())

    def suspects(self) -> list[Suspect]:
        """Instances that fail an interface mostly, while other instances mostly succeed (see :class:`Suspect`)."""
        found = []
        for row in self.interface_health():
            for label, failed in row.failed_on.items():
                succeeded = row.succeeded_on.get(label, 0)
                others_failed = sum(n for other, n in row.failed_on.items() if other != label)
                others_succeeded = sum(n for other, n in row.succeeded_on.items() if other != label)
                rate = failed / (failed + succeeded)
                others_rate = others_failed / (others_failed + others_succeeded) if others_succeeded else 1.0
                if (
                    failed >= MIN_SUSPECT_FAILURES
                    and rate >= 0.5
                    and others_succeeded
                    and others_rate <= rate / 2
                ):
                    found.append(
                        Suspect(
                            instance=label,
                            module=row.module,
                            interface=row.interface,
                            failed=failed,
                            succeeded=succeeded,
                            others_failed=others_failed,
                            others_succeeded=others_succeeded,
                        )
                    )
        if not found:
            return []
        order = self.module_order()
        first = min(order.index(s.module) for s in found)
        return sorted((s for s in found if order.index(s.module) == first), key=lambda s: -s.failed)

    def module_order(self) -> list[str]:
        """Modules in business-chain order (search, catalog, pricing, booking): a module comes after
        every module that some scenario calls before it; ties (and cycles) keep first-seen order."""
        first_seen: dict[str, int] = {}
        before: dict[str, set[str]] = {}
        for scenario in self.scenarios:
            seen: list[str] = []
            for step in scenario.steps:
                first_seen.setdefault(step.module, len(first_seen))
                before.setdefault(step.module, set()).update(m for m in seen if m != step.module)
                if step.module not in seen:
                    seen.append(step.module)
        order: list[str] = []
        remaining = sorted(first_seen, key=first_seen.__getitem__)
        while remaining:
            ready = [m for m in remaining if not (before[m] - set(order))] or remaining[:1]
            order.append(ready[0])
            remaining.remove(ready[0])
        return order
