"""Evaluate a step's assertions against a response; return the first one that fails."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jsonpath import JSONPath
from jsonpath import compile as compile_jsonpath

from baseline_guard.checks import expressions
from baseline_guard.checks.suite import JsonAssertion, StepAssertions

NOT_JSON = object()


@dataclass(frozen=True)
class AssertionOutcome:
    """A failed check: what was checked, what was expected, what came."""

    check: str
    expected: Any
    actual: Any
    message: str


@dataclass(frozen=True)
class Answer:
    """The parts of a response assertions look at."""

    status: int
    headers: Mapping[str, str]  # case-insensitive (httpx.Headers)
    text: str
    json: Any  # NOT_JSON when the body is not JSON
    elapsed_ms: float


@functools.lru_cache(maxsize=4096)
def compiled(path: str) -> JSONPath:
    query = compile_jsonpath(path)
    assert isinstance(query, JSONPath), f"{path!r} is a compound query"  # suites never use '|' / '&'
    return query


def select(path: str, document: Any) -> tuple[bool, Any]:
    """``(found, value)``: the one value of a singular path, or the list of matches of any other path."""
    query = compiled(path)
    matches = query.findall(document)
    if query.singular_query():
        return (True, matches[0]) if matches else (False, None)
    return (bool(matches), matches)


def first_failure(
    rules: StepAssertions, answer: Answer, variables: Mapping[str, Any]
) -> AssertionOutcome | None:
    """Check status, response time, headers, body and JSON assertions in that order."""
    if rules.status is not None:
        allowed = [rules.status] if isinstance(rules.status, int) else rules.status
        if answer.status not in allowed:
            expected = allowed[0] if len(allowed) == 1 else allowed
            return AssertionOutcome(
                "status", expected, answer.status, f"status {answer.status}, expected {expected}"
            )
    if rules.max_ms is not None and answer.elapsed_ms > rules.max_ms:
        return AssertionOutcome(
            "response time",
            f"<= {rules.max_ms} ms",
            f"{answer.elapsed_ms:.0f} ms",
            f"answered in {answer.elapsed_ms:.0f} ms, limit {rules.max_ms} ms",
        )
    for header in rules.headers:
        outcome = _check_header(header.name, header.equals, header.matches, header.exists, answer.headers)
        if outcome:
            return outcome
    if rules.body_contains is not None and rules.body_contains not in answer.text:
        return AssertionOutcome(
            "body contains", rules.body_contains, None, f"body does not contain {rules.body_contains!r}"
        )
    for index, rule in enumerate(rules.json_):
        outcome = check_json(rule, index, answer.json, variables)
        if outcome:
            return outcome
    return None


def _check_header(
    name: str, equals: str | None, matches: str | None, exists: bool | None, headers: Mapping[str, str]
) -> AssertionOutcome | None:
    value = headers.get(name)
    check = f"header {name}"
    if exists is not None and (value is not None) != exists:
        want = "present" if exists else "absent"
        return AssertionOutcome(f"{check} exists", want, value, f"header {name} should be {want}")
    if equals is not None and value != equals:
        return AssertionOutcome(
            f"{check} equals", equals, value, f"header {name} is {value!r}, expected {equals!r}"
        )
    if matches is not None and (value is None or not re.search(matches, value)):
        return AssertionOutcome(
            f"{check} matches", matches, value, f"header {name} is {value!r}, expected to match /{matches}/"
        )
    return None


def check_json(
    rule: JsonAssertion, index: int, document: Any, variables: Mapping[str, Any]
) -> AssertionOutcome | None:
    """Make every check of one JSONPath assertion; return the first that fails."""
    if document is NOT_JSON:
        return AssertionOutcome(
            rule.path, "a JSON body", "not JSON", f"cannot check {rule.path}: body is not JSON"
        )
    found, value = select(rule.path, document)
    for name in rule.checks():
        if name == "exists":
            if found != rule.exists:
                want = "exists" if rule.exists else "absent"
                got = value if found else "nothing"
                return AssertionOutcome(f"{rule.path} {want}", want, got, f"{rule.path}: expected it {want}")
            continue
        if not found:
            return AssertionOutcome(
                f"{rule.path} {name}",
                _expected(rule, name, index, variables),
                None,
                f"{rule.path} matched nothing",
            )
        expected = _expected(rule, name, index, variables)
        if rule.each:
            items = value if isinstance(value, list) else [value]
            for position, item in enumerate(items):
                if not _passes(name, item, expected):
                    suffix = f" (match #{position + 1} of {len(items)})"
                    return _outcome(rule, name, expected, item, suffix)
        elif not _passes(name, value, expected):
            return _outcome(rule, name, expected, value, "")
    return None


def _expected(rule: JsonAssertion, name: str, index: int, variables: Mapping[str, Any]) -> Any:
    raw = getattr(rule, name)
    if name in ("equals_expr", "gte", "lte") and isinstance(raw, str):
        return expressions.evaluate(expressions.render_braces_away(raw), variables)
    return expressions.render(raw, variables)


def _outcome(rule: JsonAssertion, name: str, expected: Any, actual: Any, suffix: str) -> AssertionOutcome:
    """The failed check, named with its expression when it has one (``$.total equals_expr price * nights``)."""
    words = {
        "equals": "expected",
        "not_equals": "expected anything but",
        "equals_expr": "expected",
        "contains": "expected to contain",
        "matches": "expected to match",
        "length": "expected length",
        "gte": "expected >=",
        "lte": "expected <=",
    }
    shown = len(actual) if name == "length" and _has_len(actual) else actual
    message = f"{rule.path}{suffix} is {shown!r}, {words[name]} {expected!r}"
    raw = getattr(rule, name)
    check = f"{rule.path} {name}" + (
        f" {raw}" if name in ("equals_expr", "gte", "lte") and isinstance(raw, str) else ""
    )
    return AssertionOutcome(check, expected, shown, message)


def _passes(name: str, actual: Any, expected: Any) -> bool:
    if name == "equals":
        return _same(actual, expected)
    if name == "not_equals":
        return not _same(actual, expected)
    if name == "equals_expr":
        return (
            _is_number(actual)
            and _is_number(expected)
            and math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9)
        )
    if name == "contains":
        if isinstance(actual, str) and isinstance(expected, str):
            return expected in actual
        return isinstance(actual, list) and any(_same(item, expected) for item in actual)
    if name == "matches":
        return actual is not None and re.search(expected, _as_text(actual)) is not None
    if name == "length":
        return _has_len(actual) and len(actual) == expected
    if name == "gte":
        return _is_number(actual) and _is_number(expected) and actual >= expected
    if name == "lte":
        return _is_number(actual) and _is_number(expected) and actual <= expected
    raise ValueError(f"unknown check {name!r}")


def _same(actual: Any, expected: Any) -> bool:
    """JSON equality: 3 == 3.0, but True is not 1 and "3" is not 3."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    if _is_number(actual) and _is_number(expected):
        return bool(actual == expected)
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(
            _same(a, e) for a, e in zip(actual, expected, strict=True)
        )
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(_same(actual[k], expected[k]) for k in actual)
    return type(actual) is type(expected) and actual == expected


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _has_len(value: Any) -> bool:
    return isinstance(value, list | str | dict)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
