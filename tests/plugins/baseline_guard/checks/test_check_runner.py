"""The runner against a real HTTP server: captures, templating, every assertion kind, retries,
timeouts, concurrency, routing-key and trace-id headers, failure localisation."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from baseline_guard.checks import CheckRun, FailureKind, StepStatus, load_suites, run_checks
from baseline_guard.checks.reports import summary_table
from baseline_guard.errors import InvalidInput
from business_sandbox import BusinessSandbox, Fault
from conftest import FlakyServer

BOOKING = """
    vars: {guest: Ada Lovelace, nights: 3}
    scenarios:
      - name: book-paris-double
        tags: [smoke, booking]
        steps:
          - name: search paris
            module: search
            interface: GET /hotels
            path: /hotel-search/hotels
            query: {city: Paris, min_stars: 4}
            capture: {hotel_id: "$.hotels[0].id"}
            assert:
              status: 200
              json:
                - {path: "$.hotels[*].city", each: true, equals: Paris}
          - name: open hotel
            module: catalog
            interface: GET /hotels/{id}
            path: "/hotel-detail/hotels/{{ hotel_id }}"
            capture: {price: {jsonpath: "$.rooms[?@.type == 'double'].price_per_night", first: true}}
            assert:
              status: 200
              json:
                - {path: $.id, equals: "{{ hotel_id }}"}
                - {path: "$.rooms[*].price_per_night", each: true, gte: 1}
          - name: create quote
            module: pricing
            interface: POST /quotes
            method: POST
            path: /quote/quotes
            json: {hotel_id: "{{ hotel_id }}", room_type: double, nights: "{{ nights }}", guests: 2}
            capture: {quote_id: $.quote_id, total: $.total, quoted_price: $.price_per_night}
            assert:
              status: 201
              json:
                - {path: $.price_per_night, equals_expr: "price"}
                - {path: $.total, equals_expr: "quoted_price * nights"}
          - name: place order
            module: booking
            interface: POST /orders
            method: POST
            path: /order/orders
            json: {quote_id: "{{ quote_id }}", guest_name: "{{ guest }}", email: ada@example.com}
            capture: {order_id: $.order_id}
            assert: {status: 201, json: [{path: $.total, equals: "{{ total }}"}]}
          - name: read order back
            module: booking
            interface: GET /orders/{id}
            path: "/order/orders/{{ order_id }}"
            assert: {status: 200, json: [{path: $.status, equals: confirmed}]}
"""


def suites_from(tmp_path: Path, text: str, name: str = "booking.yaml") -> list[Any]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return load_suites(path)


def run(tmp_path: Path, text: str, base_url: str, **kwargs: Any) -> CheckRun:
    kwargs.setdefault("environment", "baseline")
    return run_checks(suites_from(tmp_path, text), base_url, **kwargs)


def one_step(step: str, *, vars_: str = "{}") -> str:
    """A suite of one scenario 's' with one step (given as YAML) named 'the step'."""
    parsed = yaml.safe_load(textwrap.dedent(step))
    suite = {
        "vars": yaml.safe_load(vars_),
        "scenarios": [{"name": "s", "steps": [{"name": "the step", **parsed}]}],
    }
    return yaml.safe_dump(suite, allow_unicode=True)


def with_copies(text: str, names: list[str], extra: list[dict[str, Any]] | None = None) -> str:
    """The suite ``text`` with its first scenario copied under each of ``names`` (plus ``extra``)."""
    suite = yaml.safe_load(textwrap.dedent(text))
    template = suite["scenarios"][0]
    suite["scenarios"] = [{**template, "name": name} for name in names] + (extra or [])
    return yaml.safe_dump(suite, allow_unicode=True)


def test_full_chain_passes_on_a_healthy_sandbox(tmp_path: Path, sandbox: BusinessSandbox) -> None:
    result = run(tmp_path, BOOKING, sandbox.url)
    [scenario] = result.scenarios
    assert result.passed, scenario.failure
    assert [s.status for s in scenario.steps] == [StepStatus.PASSED] * 5
    assert scenario.steps[2].instance in {"baseline/quote/1", "baseline/quote/2"}
    # the captured double-room price was posted back as a JSON number, nights as an int
    quote_body = next(r for r in sandbox.state.requests if r["service"] == "quote")
    assert quote_body["path"] == "/quote/quotes"
    assert len(sandbox.state.orders) == 1


def test_wrong_total_is_localised_to_module_interface_and_instance(
    tmp_path: Path, sandbox: BusinessSandbox
) -> None:
    sandbox.state.faults["quote"] = Fault("wrong_answer")
    result = run(tmp_path, BOOKING, sandbox.url)
    [scenario] = result.scenarios
    failure = scenario.failure
    assert not result.passed and failure is not None
    assert (failure.kind, failure.module, failure.interface) == (
        FailureKind.ASSERTION,
        "pricing",
        "POST /quotes",
    )
    assert failure.check == "$.total equals_expr quoted_price * nights"
    assert (failure.expected, failure.actual) == (390.0, 130.0)
    assert failure.instance in {"baseline/quote/1", "baseline/quote/2"} and failure.version == "1.9.9-faulty"
    assert failure.service == "quote" and failure.trace_id == scenario.trace_id
    assert failure.request is not None and failure.request.body["nights"] == 3
    assert failure.response is not None and '"total":130.0' in failure.response.body_excerpt
    assert [s.status for s in scenario.steps] == [
        StepStatus.PASSED,
        StepStatus.PASSED,
        StepStatus.FAILED,
        StepStatus.NOT_RUN,
        StepStatus.NOT_RUN,
    ]
    assert result.broken_modules() == {"pricing": {"POST /quotes": ["book-paris-double"]}}
    assert sandbox.state.orders == {}  # the scenario stopped: no order placed


@pytest.mark.parametrize(
    ("service", "behaviour", "module", "interface"),
    [
        ("hotel-search", "wrong_answer", "search", "GET /hotels"),
        ("hotel-detail", "wrong_answer", "catalog", "GET /hotels/{id}"),
        ("order", "wrong_answer", "booking", "POST /orders"),
        ("hotel-detail", "fails_health", "catalog", "GET /hotels/{id}"),
        ("order", "fails_health", "booking", "POST /orders"),
    ],
)
def test_each_fault_breaks_the_right_step(
    tmp_path: Path, sandbox: BusinessSandbox, service: str, behaviour: str, module: str, interface: str
) -> None:
    sandbox.state.faults[service] = Fault(behaviour)
    failure = run(tmp_path, BOOKING, sandbox.url).scenarios[0].failure
    assert failure is not None
    assert (failure.module, failure.interface) == (module, interface)


def test_slow_response_fails_the_response_time_limit(tmp_path: Path, sandbox: BusinessSandbox) -> None:
    sandbox.state.faults["hotel-search"] = Fault("slow_response", latency_ms=300)
    suite = one_step(
        "{module: search, interface: GET /cities, path: /hotel-search/cities, assert: {max_ms: 200}}"
    )
    failure = run(tmp_path, suite, sandbox.url).scenarios[0].failure
    assert failure is not None and failure.check == "response time" and failure.expected == "<= 200 ms"
    assert failure.kind is FailureKind.ASSERTION and failure.response is not None


def test_routing_key_and_one_trace_id_per_scenario_are_sent(tmp_path: Path, sandbox: BusinessSandbox) -> None:
    two = with_copies(BOOKING, ["book-paris-double", "again"])
    result = run(tmp_path, two, sandbox.url, environment="proj-a", routing_key="rk-proj-a")
    assert result.passed and len(result.scenarios) == 2
    business = [r for r in sandbox.state.requests if r["service"] != "test"]
    assert len(business) == 10
    assert {r["headers"]["x-route-key"] for r in business} == {"rk-proj-a"}
    trace_ids = {r["headers"]["x-trace-id"] for r in business}
    assert trace_ids == {s.trace_id for s in result.scenarios} and len(trace_ids) == 2


def test_no_routing_key_header_without_a_routing_key(tmp_path: Path, sandbox: BusinessSandbox) -> None:
    assert run(tmp_path, one_step("{module: m, interface: i, path: /test/echo}"), sandbox.url).passed
    assert "x-route-key" not in sandbox.state.requests[-1]["headers"]


def test_templating_in_path_query_headers_and_body_with_types_kept(
    tmp_path: Path, sandbox: BusinessSandbox
) -> None:
    suite = one_step(
        """
        module: m
        interface: POST /echo
        method: POST
        path: /test/echo
        query: {n: "{{ n + 1 }}", who: "{{ env.name }}-{{ name }}"}
        headers: {X-Custom: "{{ name }}", Authorization: Bearer s3cret-token}
        json: {n: "{{ n * 2 }}", half: "{{ n / 4 }}", label: "n={{ n }}", nested: ["{{ env.routing_key }}"]}
        capture: {echoed: $.json}
        assert:
          status: 500
        """,
        vars_="{n: 5, name: alpha}",
    )
    result = run(tmp_path, suite, sandbox.url, environment="proj-b", routing_key="rk-b")
    failure = result.scenarios[0].failure
    assert failure is not None and failure.response is not None
    import json

    echoed = json.loads(failure.response.body_excerpt)
    assert echoed["json"] == {"n": 10, "half": 1.25, "label": "n=5", "nested": ["rk-b"]}
    assert echoed["query"] == {"n": "6", "who": "proj-b-alpha"}
    assert echoed["headers"]["x-custom"] == "alpha"
    # the secret went to the server but never into the result (not even echoed back in the answer)
    sent = [r["headers"] for r in sandbox.state.requests if r["path"] == "/test/echo"]
    assert sent[-1]["authorization"] == "Bearer s3cret-token"
    assert echoed["headers"]["authorization"] == "***"
    assert failure.request is not None and failure.request.headers["Authorization"] == "<redacted>"
    assert "s3cret" not in failure.request.model_dump_json()


ASSERTION_CASES = [
    # (json assertion, passes against the search response for Paris)
    ("{path: '$.count', equals: 3}", True),
    ("{path: '$.count', equals: 4}", False),
    ("{path: '$.count', equals: '3'}", False),
    ("{path: '$.city', not_equals: Rome}", True),
    ("{path: '$.city', not_equals: Paris}", False),
    ("{path: '$.hotels[0].id', exists: true}", True),
    ("{path: '$.hotels[5].id', exists: true}", False),
    ("{path: '$.missing', exists: false}", True),
    ("{path: '$.city', exists: false}", False),
    ("{path: '$.hotels[0].id', matches: '^h-1\\d{3}$'}", True),
    ("{path: '$.hotels[0].id', matches: '^h-2'}", False),
    ("{path: '$.hotels', length: 3}", True),
    ("{path: '$.hotels[*]', length: 3}", True),
    ("{path: '$.hotels', length: 2}", False),
    ("{path: '$.count', gte: 3, lte: 3}", True),
    ("{path: '$.count', gte: 4}", False),
    ("{path: '$.count', lte: 2}", False),
    ("{path: '$.count', gte: '{{ min }} - 1'}", True),
    ("{path: '$.count', equals_expr: 'min + 1'}", True),
    ("{path: '$.count', equals_expr: 'min * 2'}", False),
    ("{path: '$.hotels[*].city', each: true, equals: Paris}", True),
    ("{path: '$.hotels[*].stars', each: true, gte: 4}", False),
    ("{path: '$.hotels[*].name', contains: Hotel Lumière}", True),
    ("{path: '$.hotels[*].name', contains: Spree Lodge}", False),
    ("{path: '$.hotels[0].name', contains: Lumi}", True),
    ("{path: '$.hotels[?@.stars == 5].name', equals: [Grand Opéra Palace]}", True),
    ("{path: '$.nothing', equals: 1}", False),
]


@pytest.mark.parametrize(("rule", "passes"), ASSERTION_CASES)
def test_json_assertion_kinds(tmp_path: Path, sandbox: BusinessSandbox, rule: str, passes: bool) -> None:
    suite = one_step(
        f"{{module: search, interface: GET /hotels, path: /hotel-search/hotels, query: {{city: Paris}}, "
        f"assert: {{status: 200, json: [{rule}]}}}}",
        vars_="{min: 2}",
    )
    scenario = run(tmp_path, suite, sandbox.url).scenarios[0]
    assert scenario.passed is passes, scenario.failure
    if not passes:
        assert scenario.failure is not None and scenario.failure.kind is FailureKind.ASSERTION
        assert scenario.failure.check.startswith("$.")


def test_status_header_and_body_assertions(tmp_path: Path, sandbox: BusinessSandbox) -> None:
    ok = "{module: m, interface: i, path: /test/echo, assert: {status: [200, 204], body_contains: method, headers: [{name: X-Service, equals: echo}, {name: X-Version, matches: '^0\\.'}, {name: X-Nope, exists: false}]}}"
    assert run(tmp_path, one_step(ok), sandbox.url).passed
    for bad, check in [
        ("status: 201", "status"),
        ("headers: [{name: X-Service, equals: quote}]", "header X-Service equals"),
        ("headers: [{name: X-Nope, exists: true}]", "header X-Nope exists"),
        ("body_contains: nowhere", "body contains"),
    ]:
        failure = (
            run(
                tmp_path,
                one_step(f"{{module: m, interface: i, path: /test/echo, assert: {{{bad}}}}}"),
                sandbox.url,
            )
            .scenarios[0]
            .failure
        )
        assert failure is not None and failure.check == check


def test_json_assertion_on_a_non_json_body(tmp_path: Path, sandbox: BusinessSandbox) -> None:
    suite = one_step(
        "{module: m, interface: i, path: /test/raw, query: {body: oops}, assert: {json: [{path: $.a, exists: true}]}}"
    )
    failure = run(tmp_path, suite, sandbox.url).scenarios[0].failure
    assert failure is not None and failure.actual == "not JSON" and failure.response is not None
    assert failure.response.body_excerpt == "oops"


def test_response_excerpt_is_cut_at_2kb(tmp_path: Path, sandbox: BusinessSandbox) -> None:
    suite = one_step(
        "{module: m, interface: i, path: /test/raw, query: {body: '"
        + "x" * 5000
        + "'}, assert: {status: 404}}"
    )
    response = run(tmp_path, suite, sandbox.url).scenarios[0].failure.response  # type: ignore[union-attr]
    assert response is not None and len(response.body_excerpt) == 2048 and response.body_truncated


def test_missing_capture_and_arithmetic_on_text_fail_the_step(
    tmp_path: Path, sandbox: BusinessSandbox
) -> None:
    missing = one_step("{module: m, interface: i, path: /test/echo, capture: {x: $.nope}}")
    failure = run(tmp_path, missing, sandbox.url).scenarios[0].failure
    assert failure is not None and failure.kind is FailureKind.CAPTURE and "$.nope" in failure.message
    text_math = one_step(
        "{module: m, interface: i, path: /test/echo, json: {n: '{{ name * 2 }}'}}", vars_="{name: a}"
    )
    failure = run(tmp_path, text_math, sandbox.url).scenarios[0].failure
    assert failure is not None and failure.kind is FailureKind.TEMPLATE and "needs numbers" in failure.message


def test_transport_errors_are_retried_until_an_answer(tmp_path: Path, flaky_server: Any) -> None:
    server: FlakyServer = flaky_server(drop=2)
    suite = one_step(
        "{module: m, interface: i, path: /x, retry: {count: 2, backoff_ms: 10}, assert: {status: 200}}"
    )
    scenario = run(tmp_path, suite, server.url).scenarios[0]
    assert scenario.passed, scenario.failure
    assert scenario.steps[0].attempts == 3 and server.connections == 3


def test_transport_errors_fail_after_the_last_retry(tmp_path: Path, flaky_server: Any) -> None:
    server: FlakyServer = flaky_server(drop=5)
    suite = one_step("{module: m, interface: i, path: /x, retry: {count: 1, backoff_ms: 10}}")
    failure = run(tmp_path, suite, server.url).scenarios[0].failure
    assert failure is not None and failure.kind is FailureKind.TRANSPORT
    assert "after 2 attempts" in failure.message and server.connections == 2


def test_connection_refused_without_retry_is_one_attempt(tmp_path: Path, closed_port_url: str) -> None:
    scenario = run(tmp_path, one_step("{module: m, interface: i, path: /x}"), closed_port_url).scenarios[0]
    assert scenario.failure is not None and scenario.failure.kind is FailureKind.TRANSPORT
    assert scenario.steps[0].attempts == 1 and scenario.failure.actual == "ConnectError"


def test_a_500_is_never_retried(tmp_path: Path, sandbox: BusinessSandbox) -> None:
    suite = one_step(
        "{module: m, interface: i, path: /test/status/500, retry: {count: 3, backoff_ms: 10}, assert: {status: 200}}"
    )
    failure = run(tmp_path, suite, sandbox.url).scenarios[0].failure
    assert failure is not None and failure.kind is FailureKind.ASSERTION and failure.actual == 500
    assert [r["path"] for r in sandbox.state.requests] == ["/test/status/500"]


def test_step_timeout(tmp_path: Path, sandbox: BusinessSandbox) -> None:
    suite = one_step(
        "{module: m, interface: i, path: /test/delay, query: {ms: 2000}, timeout_ms: 100, retry: {count: 2}}"
    )
    scenario = run(tmp_path, suite, sandbox.url).scenarios[0]
    assert scenario.failure is not None and scenario.failure.kind is FailureKind.TIMEOUT
    assert scenario.failure.message == "no answer within 100 ms"
    assert scenario.steps[0].attempts == 1  # a read timeout is not retried: the server may have acted


def test_run_timeout_applies_to_every_step(tmp_path: Path, sandbox: BusinessSandbox) -> None:
    suite = one_step("{module: m, interface: i, path: /test/delay, query: {ms: 2000}}")
    failure = run(tmp_path, suite, sandbox.url, timeout_s=0.1).scenarios[0].failure
    assert failure is not None and failure.kind is FailureKind.TIMEOUT


def test_concurrent_run_returns_every_scenario_complete(tmp_path: Path, sandbox: BusinessSandbox) -> None:
    text = with_copies(BOOKING, [f"book-{i}" for i in range(40)])
    sandbox.state.faults["order"] = Fault("wrong_answer", instance=2)
    result = run(tmp_path, text, sandbox.url, concurrency=8)
    assert sorted(s.name for s in result.scenarios) == sorted(f"book-{i}" for i in range(40))
    assert all(len(s.steps) == 5 for s in result.scenarios)
    failed = result.failed_scenarios
    assert 0 < len(failed) < 40  # round robin: only the orders that hit instance 2 broke
    assert {f.failure.instance for f in failed if f.failure} == {"baseline/order/2"}
    assert len({s.trace_id for s in result.scenarios}) == 40
    [health] = [h for h in result.interface_health() if h.interface == "POST /orders"]
    assert health.failed_on == {"baseline/order/2 v1.9.9-faulty": len(failed)}
    assert set(health.passed_on) == {"baseline/order/1 v1.0.0"}
    [suspect] = result.suspects()
    assert (suspect.instance, suspect.module, suspect.interface) == (
        "baseline/order/2 v1.9.9-faulty",
        "booking",
        "POST /orders",
    )
    assert (suspect.failed, suspect.succeeded, suspect.others_failed) == (len(failed), 0, 0)
    assert suspect.others_succeeded == health.passed
    assert (
        f"  SUSPECT baseline/order/2 v1.9.9-faulty: booking · POST /orders failed {len(failed)} of {len(failed)} calls"
        in summary_table(result)
    )


def test_tag_filter(tmp_path: Path, sandbox: BusinessSandbox) -> None:
    other = {
        "name": "other",
        "tags": ["search"],
        "steps": [{"name": "s", "module": "m", "interface": "i", "path": "/test/echo"}],
    }
    text = with_copies(BOOKING, ["book-paris-double"], extra=[other])
    assert [s.name for s in run(tmp_path, text, sandbox.url, tags=["search"]).scenarios] == ["other"]
    assert len(run(tmp_path, text, sandbox.url, tags=["search", "smoke"]).scenarios) == 2
    with pytest.raises(
        InvalidInput, match=r"no scenario has any of the tags \['nope'\]; tags in these suites: booking"
    ):
        run(tmp_path, text, sandbox.url, tags=["nope"])


def test_bad_run_arguments(tmp_path: Path, sandbox: BusinessSandbox) -> None:
    with pytest.raises(InvalidInput, match="base URL must look like http://host:port"):
        run(tmp_path, BOOKING, "localhost:8080")
    with pytest.raises(InvalidInput, match=r"concurrency must be 1\.\.1000, got 0"):
        run(tmp_path, BOOKING, sandbox.url, concurrency=0)


def test_a_report_keeps_no_secret_of_the_request_or_the_answer(
    tmp_path: Path, sandbox: BusinessSandbox
) -> None:
    """Query strings, bodies, cookies and what the server echoes back are masked in every report."""
    from baseline_guard.checks.html_report import to_html
    from baseline_guard.checks.reports import to_json, to_junit_xml

    suite = one_step(
        """
        module: m
        interface: POST /echo
        method: POST
        path: /test/echo
        query: {api_key: qk-7f3a9c2e, city: Paris}
        headers: {Set-Cookie: "sid=ck-41b7d0e2; HttpOnly", X-Upstream-Token: up-5d2c8e1f}
        json: {user: ci, password: bd-9a8b7c6d, note: "dsn postgresql://app:p#ss-3e4f@db/app"}
        assert:
          status: 500
        """
    )
    result = run(tmp_path, suite, sandbox.url)

    secrets = ["qk-7f3a9c2e", "ck-41b7d0e2", "up-5d2c8e1f", "bd-9a8b7c6d", "p#ss-3e4f"]
    for report in (to_html(result), to_json(result), to_junit_xml(result), result.model_dump_json()):
        leaks = [report[max(0, report.find(s) - 120) : report.find(s) + 20] for s in secrets if s in report]
        assert not leaks, leaks
    failure = result.scenarios[0].failure
    assert failure is not None and failure.request is not None
    assert "city=Paris" in failure.request.url and failure.request.body["user"] == "ci"
