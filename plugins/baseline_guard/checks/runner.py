"""Run business-check scenarios against an environment over HTTP (no Airflow import).

Scenarios run concurrently (one shared keep-alive ``httpx.AsyncClient``, at most ``concurrency`` at
a time); the steps of one scenario run in order, and the first failed step stops its scenario. Each
scenario sends one ``X-Trace-Id`` on all its calls, and ``X-Route-Key`` when checking a project
environment, so the gateway routes the whole chain to that environment's instances.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from baseline_guard.checks import expressions
from baseline_guard.checks.assertions import NOT_JSON, Answer, first_failure, select
from baseline_guard.checks.results import (
    CheckRun,
    Failure,
    FailureKind,
    RequestRecord,
    ResponseRecord,
    ScenarioResult,
    StepResult,
    StepStatus,
)
from baseline_guard.checks.suite import Scenario, Step, Suite
from baseline_guard.environment_contract import ROUTING_KEY_HEADER, TRACE_ID_HEADER
from baseline_guard.errors import InvalidInput
from baseline_guard.masking import is_secret_key, mask_structure, mask_text

DEFAULT_CONCURRENCY = 8  # the sandbox on 2 cores is fastest around 4-8 scenarios in flight (bench)
DEFAULT_TIMEOUT_S = 10.0
BODY_EXCERPT_CHARS = 2048
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})
REDACTED = "<redacted>"
# Response headers kept in a failure record: they name the instance that answered.
INSTANCE_HEADERS = ("X-Service", "X-Instance", "X-Version", "X-Environment", "Content-Type")


@dataclass(frozen=True)
class _RunContext:
    base_url: str
    env: dict[str, Any]
    routing_key: str | None
    timeout_s: float
    overrides: Mapping[str, Any]


class _StepFailed(Exception):
    def __init__(self, failure: Failure, result: StepResult) -> None:
        super().__init__(failure.message)
        self.failure = failure
        self.result = result


def select_scenarios(suites: Iterable[Suite], tags: Iterable[str] = ()) -> list[tuple[Suite, Scenario]]:
    """Scenarios having any of ``tags`` (all when ``tags`` is empty), in suite order.

    :raises InvalidInput: tags were given and no scenario has any of them.
    """
    wanted = {t for t in tags if t}
    suites = list(suites)
    chosen = [(s, sc) for s in suites for sc in s.scenarios if not wanted or wanted & set(sc.tags)]
    if not chosen:
        known = sorted({t for s in suites for sc in s.scenarios for t in sc.tags})
        what = (
            f"no scenario has any of the tags {sorted(wanted)}" if wanted else "the suites hold no scenario"
        )
        raise InvalidInput(f"{what}; tags in these suites: {', '.join(known) or 'none'}")
    return chosen


def run_checks(
    suites: Sequence[Suite],
    base_url: str,
    *,
    environment: str,
    routing_key: str | None = None,
    tags: Iterable[str] = (),
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    variables: Mapping[str, Any] | None = None,
) -> CheckRun:
    """Run the scenarios of ``suites`` (filtered by ``tags``) against ``base_url``; never raises on a failed check.

    Synchronous wrapper over :func:`run_checks_async` (must not be called from a running event loop).

    :param base_url: the environment's gateway, e.g. ``http://127.0.0.1:8080``.
    :param environment: name of the environment checked (reported, and ``{{ env.name }}``).
    :param routing_key: sent as ``X-Route-Key`` on every call (checking a project environment).
    :param tags: run only scenarios having any of these tags.
    :param concurrency: scenarios in flight at once.
    :param timeout_s: per-step timeout (a step's ``timeout_ms`` overrides it).
    :param variables: values that override suite and scenario ``vars``.
    :raises InvalidInput: bad base URL, concurrency or timeout, or a tag filter that selects nothing.
    """
    coroutine = run_checks_async(
        suites,
        base_url,
        environment=environment,
        routing_key=routing_key,
        tags=tags,
        concurrency=concurrency,
        timeout_s=timeout_s,
        variables=variables,
    )
    with asyncio.Runner(loop_factory=_fast_loop_factory()) as runner:
        return runner.run(coroutine)


def _fast_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard] on Linux
        return None
    return uvloop.new_event_loop


async def run_checks_async(
    suites: Sequence[Suite],
    base_url: str,
    *,
    environment: str,
    routing_key: str | None = None,
    tags: Iterable[str] = (),
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    variables: Mapping[str, Any] | None = None,
) -> CheckRun:
    """The async core of :func:`run_checks` (same parameters)."""
    base_url = _check_base_url(base_url)
    if not 1 <= concurrency <= 1000:
        raise InvalidInput(f"concurrency must be 1..1000, got {concurrency}")
    if not 0 < timeout_s <= 600:
        raise InvalidInput(f"timeout_s must be > 0 and <= 600 seconds, got {timeout_s}")
    tags = [t for t in tags if t]
    chosen = select_scenarios(suites, tags)
    context = _RunContext(
        base_url=base_url,
        env={"name": environment, "routing_key": routing_key, "base_url": base_url},
        routing_key=routing_key,
        timeout_s=timeout_s,
        overrides=dict(variables or {}),
    )
    started_at = datetime.now(UTC)
    clock = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=timeout_s, follow_redirects=False) as client:

        async def bounded(suite: Suite, scenario: Scenario) -> ScenarioResult:
            async with semaphore:
                return await _run_scenario(client, context, suite, scenario)

        results = await asyncio.gather(*(bounded(s, sc) for s, sc in chosen))
    return CheckRun(
        environment=environment,
        routing_key=routing_key,
        base_url=base_url,
        tags=tags,
        started_at=started_at,
        duration_ms=(time.perf_counter() - clock) * 1000,
        scenarios=list(results),
    )


def _check_base_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"base URL must look like http://host:port, got {base_url!r}")
    return base_url.rstrip("/")


async def _run_scenario(
    client: httpx.AsyncClient, context: _RunContext, suite: Suite, scenario: Scenario
) -> ScenarioResult:
    trace_id = uuid.uuid4().hex
    variables: dict[str, Any] = {**suite.vars, **scenario.vars, **context.overrides, "env": context.env}
    clock = time.perf_counter()
    steps: list[StepResult] = []
    failure: Failure | None = None
    for number, step in enumerate(scenario.steps, start=1):
        if failure is not None:
            steps.append(
                StepResult(
                    name=step.name, module=step.module, interface=step.interface, status=StepStatus.NOT_RUN
                )
            )
            continue
        try:
            steps.append(await _run_step(client, context, step, number, variables, trace_id))
        except _StepFailed as failed:
            failure = failed.failure
            steps.append(failed.result)
    return ScenarioResult(
        name=scenario.name,
        suite=suite.name,
        description=scenario.description,
        tags=list(scenario.tags),
        passed=failure is None,
        trace_id=trace_id,
        duration_ms=(time.perf_counter() - clock) * 1000,
        steps=steps,
        failure=failure,
    )


async def _run_step(
    client: httpx.AsyncClient,
    context: _RunContext,
    step: Step,
    number: int,
    variables: dict[str, Any],
    trace_id: str,
) -> StepResult:
    """Send one step's request, check it, capture into ``variables``; raise :class:`_StepFailed`."""
    call = _StepCall(step, number, trace_id, time.perf_counter())
    request = _build_request(call, context, variables)
    response, attempts, elapsed_ms = await _send(client, call, request)
    captured = _check_answer(call, request, response, attempts, elapsed_ms, variables)
    variables.update(captured)
    return call.passed(response, attempts)


@dataclass(frozen=True)
class _StepCall:
    """One step of one scenario while it runs: which step, where in the scenario, since when."""

    step: Step
    number: int
    trace_id: str
    started: float  # time.perf_counter()

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def failed(self, kind: FailureKind, check: str, message: str, **details: Any) -> _StepFailed:
        """The failure of this step (what was checked, expected, answered, by which instance)."""
        step = self.step
        response: ResponseRecord | None = details.get("response")
        headers = response.headers if response else {}
        result = StepResult(
            name=step.name,
            module=step.module,
            interface=step.interface,
            status=StepStatus.FAILED,
            duration_ms=self.elapsed_ms(),
            attempts=details.pop("attempts", 0),
            http_status=response.status if response else None,
            instance=headers.get("X-Instance"),
            version=headers.get("X-Version"),
        )
        failure = Failure(
            kind=kind,
            module=step.module,
            interface=step.interface,
            step=step.name,
            step_number=self.number,
            check=check,
            message=message,
            trace_id=self.trace_id,
            service=headers.get("X-Service"),
            instance=headers.get("X-Instance"),
            version=headers.get("X-Version"),
            **details,
        )
        return _StepFailed(failure, result)

    def passed(self, response: httpx.Response, attempts: int) -> StepResult:
        step = self.step
        return StepResult(
            name=step.name,
            module=step.module,
            interface=step.interface,
            status=StepStatus.PASSED,
            duration_ms=self.elapsed_ms(),
            attempts=attempts,
            http_status=response.status_code,
            instance=response.headers.get("X-Instance"),
            version=response.headers.get("X-Version"),
        )


@dataclass(frozen=True)
class _Request:
    """A step's request, rendered from the scenario's variables, and its redacted record."""

    method: str
    url: str
    query: dict[str, Any]
    headers: dict[str, str]
    body: Any
    send_body: bool
    timeout_s: float
    record: RequestRecord


def _build_request(call: _StepCall, context: _RunContext, variables: Mapping[str, Any]) -> _Request:
    """Render the step's path, query, headers and body; add the routing key and the trace id."""
    step = call.step
    try:
        path = _as_str(expressions.render(step.path, variables))
        query = {k: _query_value(v) for k, v in expressions.render(step.query, variables).items()}
        headers = {str(k): _as_str(v) for k, v in expressions.render(step.headers, variables).items()}
        body = expressions.render(step.json_body, variables)
    except expressions.ExpressionError as exc:
        raise call.failed(FailureKind.TEMPLATE, "template", f"cannot build the request: {exc}") from None

    headers.setdefault(ROUTING_KEY_HEADER, context.routing_key or "")
    if not headers[ROUTING_KEY_HEADER]:
        del headers[ROUTING_KEY_HEADER]
    headers[TRACE_ID_HEADER] = call.trace_id
    url = context.base_url + path
    return _Request(
        method=step.method,
        url=url,
        query=query,
        headers=headers,
        body=body,
        send_body=step.json_body is not None,
        timeout_s=step.timeout_ms / 1000 if step.timeout_ms else context.timeout_s,
        record=RequestRecord(
            method=step.method,
            url=mask_text(_with_query(url, query)),
            headers=_redacted(headers),
            body=mask_structure(body),
        ),
    )


async def _send(
    client: httpx.AsyncClient, call: _StepCall, request: _Request
) -> tuple[httpx.Response, int, float]:
    """Send the request, retrying connection failures as the step allows; ``(response, attempts, ms)``."""
    step = call.step
    max_attempts = 1 + (step.retry.count if step.retry else 0)
    attempts = 0
    while True:
        attempts += 1
        sent = time.perf_counter()
        try:
            async with asyncio.timeout(request.timeout_s):
                response = await client.request(
                    request.method,
                    request.url,
                    params=request.query or None,
                    headers=request.headers,
                    json=request.body if request.send_body else None,
                    timeout=request.timeout_s,
                )
            return response, attempts, (time.perf_counter() - sent) * 1000
        except (TimeoutError, httpx.TimeoutException) as exc:
            if not (isinstance(exc, httpx.ConnectTimeout) and attempts < max_attempts):
                raise _no_answer_in_time(call, request, attempts) from None
        except httpx.TransportError as exc:
            if attempts >= max_attempts:
                raise _no_answer(call, request, attempts, exc) from None
        await _backoff(step, attempts)


def _no_answer_in_time(call: _StepCall, request: _Request, attempts: int) -> _StepFailed:
    limit_ms = f"{request.timeout_s * 1000:.0f} ms"
    return call.failed(
        FailureKind.TIMEOUT,
        "response time",
        f"no answer within {limit_ms}",
        expected=f"an answer within {limit_ms}",
        actual="timed out",
        request=request.record,
        attempts=attempts,
    )


def _no_answer(call: _StepCall, request: _Request, attempts: int, exc: httpx.TransportError) -> _StepFailed:
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    return call.failed(
        FailureKind.TRANSPORT,
        "transport",
        f"no answer{tries}: {type(exc).__name__}: {exc or 'connection failed'}",
        expected="an HTTP answer",
        actual=type(exc).__name__,
        request=request.record,
        attempts=attempts,
    )


def _check_answer(
    call: _StepCall,
    request: _Request,
    response: httpx.Response,
    attempts: int,
    elapsed_ms: float,
    variables: Mapping[str, Any],
) -> dict[str, Any]:
    """Run the step's assertions on the answer, then its captures; return the captured values."""
    step = call.step
    answer = Answer(
        status=response.status_code,
        headers=response.headers,
        text=response.text,
        json=_json_or_marker(response.content),
        elapsed_ms=elapsed_ms,
    )
    where = {"request": request.record, "response": _response_record(response, answer), "attempts": attempts}
    captured, missing = _capture(step, response.headers, answer.json)
    try:
        outcome = first_failure(step.assert_, answer, {**variables, **captured})
    except expressions.ExpressionError as exc:
        raise call.failed(
            FailureKind.TEMPLATE, "template", f"cannot evaluate an assertion: {exc}", **where
        ) from None
    if outcome is not None:
        raise call.failed(
            FailureKind.ASSERTION,
            outcome.check,
            outcome.message,
            expected=outcome.expected,
            actual=outcome.actual,
            **where,
        )
    if missing:
        name, source = missing[0]
        raise call.failed(
            FailureKind.CAPTURE,
            f"capture {name}",
            f"cannot capture {name!r}: {source} is not in the response",
            expected=f"{source} present",
            actual="missing",
            **where,
        )
    return captured


def _capture(
    step: Step, headers: httpx.Headers, document: Any
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Values this step captures, and ``(name, source)`` of those the response lacks."""
    captured: dict[str, Any] = {}
    missing: list[tuple[str, str]] = []
    for name, capture in step.capture.items():
        if capture.header is not None:
            found, value = capture.header in headers, headers.get(capture.header)
            source = f"header {capture.header}"
        else:
            source = capture.jsonpath or "$"
            found, value = (False, None) if document is NOT_JSON else select(source, document)
            if found and capture.first and isinstance(value, list):
                value = value[0]
        if found:
            captured[name] = value
        else:
            missing.append((name, source))
    return captured, missing


async def _backoff(step: Step, attempt: int) -> None:
    assert step.retry is not None
    await asyncio.sleep(step.retry.backoff_ms / 1000 * 2 ** (attempt - 1))


def _json_or_marker(content: bytes) -> Any:
    if not content:
        return NOT_JSON
    try:
        return json.loads(content)
    except ValueError:
        return NOT_JSON


def _response_record(response: httpx.Response, answer: Answer) -> ResponseRecord:
    text = answer.text
    return ResponseRecord(
        status=answer.status,
        headers=_redacted(
            {name: response.headers[name] for name in INSTANCE_HEADERS if name in response.headers}
        ),
        body_excerpt=mask_text(text[:BODY_EXCERPT_CHARS]),
        body_truncated=len(text) > BODY_EXCERPT_CHARS,
        elapsed_ms=round(answer.elapsed_ms, 1),
    )


def _redacted(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers for a report: secret ones (by name) redacted, secrets inside the others masked."""
    return {
        k: REDACTED if k.lower() in SECRET_HEADERS or is_secret_key(k) else mask_text(v)
        for k, v in headers.items()
    }


def _with_query(url: str, query: Mapping[str, Any]) -> str:
    return str(httpx.URL(url, params=query)) if query else url


def _as_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _query_value(value: Any) -> Any:
    if isinstance(value, list):
        return [_as_str(v) for v in value]
    return _as_str(value)
