"""The shape of a business-check suite file (YAML), validated with pydantic at load time.

One file is one business area. A suite holds ``vars`` and ``scenarios``; a scenario is a business
flow of ordered ``steps``; a step is one HTTP call that belongs to a module and an interface::

    vars: {guest: Ada Lovelace}
    scenarios:
      - name: book-paris-double
        tags: [smoke, booking]
        steps:
          - name: create quote
            module: pricing
            interface: POST /quotes
            method: POST
            path: /quote/quotes
            json: {hotel_id: "{{ hotel_id }}", room_type: double, nights: 3, guests: 2}
            capture: {quote_id: $.quote_id, total: $.total}
            assert:
              status: 201
              max_ms: 1000
              json:
                - {path: $.total, equals_expr: "price * 3"}
"""

from __future__ import annotations

import re
from typing import Any, Literal

from jsonpath import JSONPath, JSONPathError
from jsonpath import compile as compile_jsonpath
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from baseline_guard.checks import expressions

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,79}$"
VAR_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# The checks a JSONPath assertion can make, in the order they are evaluated and reported.
JSON_CHECKS = ("exists", "equals", "not_equals", "equals_expr", "contains", "matches", "length", "gte", "lte")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_jsonpath(path: str) -> str:
    try:
        query = compile_jsonpath(path)
    except JSONPathError as exc:
        first_line = str(exc).splitlines()[0]
        raise ValueError(f"not a valid JSONPath {path!r}: {first_line}") from None
    if not isinstance(query, JSONPath):
        raise ValueError(
            f"compound JSONPath {path!r} ('|' or '&') is not supported; use one path per assertion"
        )
    return path


def _check_var_names(cls: type, variables: dict[str, Any]) -> dict[str, Any]:
    for name in variables:
        if not VAR_PATTERN.match(name) or name == "env":
            raise ValueError(
                f"variable name {name!r} must be an identifier (letters, digits, _) and not 'env'"
            )
    return variables


def _check_expression(value: Any) -> Any:
    if isinstance(value, str):
        expressions.parse(expressions.render_braces_away(value))
    return value


class JsonAssertion(_Strict):
    """Checks on the value a JSONPath selects from the response body.

    A singular path (``$.total``, ``$.hotels[0].id``) selects one value; any other path
    (``$.hotels[*].city``) selects the list of its matches. With ``each: true`` every match must pass
    (and there must be at least one). Several checks on one path are all made (``gte`` + ``lte``).
    """

    path: str = Field(description="JSONPath (RFC 9535) into the response body.")
    exists: bool | None = Field(default=None, description="The path matches something (true) or nothing.")
    equals: Any = Field(default=None, description="Equal to this value (templates allowed).")
    not_equals: Any = Field(default=None, description="Not equal to this value (templates allowed).")
    equals_expr: str | None = Field(
        default=None, description="Numerically equal to an arithmetic expression, e.g. 'price * 3'."
    )
    contains: Any = Field(default=None, description="A list containing this item, or a string containing it.")
    matches: str | None = Field(
        default=None, description="The value, as text, matches this regular expression."
    )
    length: int | None = Field(default=None, ge=0, description="Length of the list, string or object.")
    gte: float | str | None = Field(default=None, description="Number >= this (number or expression).")
    lte: float | str | None = Field(default=None, description="Number <= this (number or expression).")
    each: bool = Field(default=False, description="Apply the checks to every match of a non-singular path.")

    @field_validator("path")
    @classmethod
    def _valid_path(cls, path: str) -> str:
        return _check_jsonpath(path)

    @field_validator("matches")
    @classmethod
    def _check_regex(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression {pattern!r}: {exc}") from None
        return pattern

    @field_validator("equals_expr", "gte", "lte")
    @classmethod
    def _check_expr(cls, value: Any) -> Any:
        return _check_expression(value)

    @model_validator(mode="after")
    def _at_least_one_check(self) -> JsonAssertion:
        if not self.checks():
            raise ValueError(
                f"assertion on {self.path} makes no check; give one of: " + ", ".join(JSON_CHECKS)
            )
        return self

    def checks(self) -> list[str]:
        """The checks this assertion makes (``equals: null`` counts when written)."""
        return [name for name in JSON_CHECKS if name in self.model_fields_set]


class HeaderAssertion(_Strict):
    name: str
    equals: str | None = None
    matches: str | None = None
    exists: bool | None = None


class StepAssertions(_Strict):
    status: int | list[int] | None = Field(
        default=None, description="Expected HTTP status (or any of a list)."
    )
    max_ms: int | None = Field(default=None, gt=0, description="Response time limit in milliseconds.")
    json_: list[JsonAssertion] = Field(default_factory=list, alias="json")
    headers: list[HeaderAssertion] = Field(default_factory=list)
    body_contains: str | None = Field(default=None, description="The raw body contains this text.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("status")
    @classmethod
    def _valid_status(cls, status: int | list[int] | None) -> int | list[int] | None:
        for code in [status] if isinstance(status, int) else status or []:
            if not 100 <= code <= 599:
                raise ValueError(f"HTTP status must be 100..599, got {code}")
        return status


class Capture(_Strict):
    """Where a captured value comes from: a JSONPath into the body, or a response header."""

    jsonpath: str | None = None
    header: str | None = None
    first: bool = Field(default=False, description="Keep only the first match of a non-singular JSONPath.")

    @field_validator("jsonpath")
    @classmethod
    def _valid_path(cls, path: str | None) -> str | None:
        return None if path is None else _check_jsonpath(path)

    @model_validator(mode="after")
    def _exactly_one_source(self) -> Capture:
        if (self.jsonpath is None) == (self.header is None):
            raise ValueError("a capture needs exactly one of: jsonpath, header")
        return self


class Retry(_Strict):
    """Retry a step on transport errors only (connection refused/reset, connect timeout).

    A response of any status, and a read timeout (the server may have acted on the request), is
    never retried.
    """

    count: int = Field(ge=1, le=10, description="Extra attempts after the first.")
    backoff_ms: int = Field(
        default=200, ge=0, le=30_000, description="Wait before retry n: backoff_ms * 2**(n-1)."
    )


class Step(_Strict):
    name: str = Field(min_length=1, max_length=120)
    module: str = Field(min_length=1, max_length=60, description="Business module the call belongs to.")
    interface: str = Field(
        min_length=1, max_length=120, description="Interface within it, e.g. 'POST /quotes'."
    )
    method: HttpMethod = "GET"
    path: str = Field(description="Path through the gateway, e.g. /quote/quotes/{{ quote_id }}.")
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, Any] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    capture: dict[str, Capture] = Field(default_factory=dict)
    assert_: StepAssertions = Field(default_factory=StepAssertions, alias="assert")
    retry: Retry | None = None
    timeout_ms: int | None = Field(
        default=None, gt=0, le=300_000, description="Overrides the run's step timeout."
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("path")
    @classmethod
    def _path_is_absolute(cls, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        return path

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, method: Any) -> Any:
        return method.upper() if isinstance(method, str) else method

    @field_validator("capture", mode="before")
    @classmethod
    def _capture_shorthand(cls, capture: Any) -> Any:
        if isinstance(capture, dict):
            return {k: {"jsonpath": v} if isinstance(v, str) else v for k, v in capture.items()}
        return capture

    @field_validator("capture")
    @classmethod
    def _capture_names(cls, capture: dict[str, Capture]) -> dict[str, Capture]:
        for name in capture:
            if not VAR_PATTERN.match(name) or name == "env":
                raise ValueError(
                    f"capture name {name!r} must be an identifier (letters, digits, _) and not 'env'"
                )
        return capture

    def templated_fields(self) -> dict[str, Any]:
        """The fields in which ``{{ ... }}`` templates are rendered, by field name."""
        fields: dict[str, Any] = {
            "path": self.path,
            "headers": self.headers,
            "query": self.query,
            "json": self.json_body,
        }
        for i, check in enumerate(self.assert_.json_):
            for name in ("equals", "not_equals", "contains"):
                if name in check.model_fields_set:
                    fields[f"assert.json.{i}.{name}"] = getattr(check, name)
            for name in ("equals_expr", "gte", "lte"):
                value = getattr(check, name)
                if isinstance(value, str):
                    fields[f"assert.json.{i}.{name}"] = "{{ " + expressions.render_braces_away(value) + " }}"
        return fields


class Scenario(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    vars: dict[str, Any] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)

    _var_names = field_validator("vars")(_check_var_names)


class SuiteFile(_Strict):
    """What a suite file holds; :class:`Suite` adds where it came from."""

    name: str | None = Field(default=None, description="Suite name; defaults to the file name without .yaml.")
    description: str = ""
    templates: dict[str, Any] = Field(
        default_factory=dict,
        description="A place to define YAML anchors (&step) reused below with '<<: *step'; not run.",
    )
    vars: dict[str, Any] = Field(default_factory=dict)
    scenarios: list[Scenario] = Field(min_length=1)

    _var_names = field_validator("vars")(_check_var_names)


class Suite(_Strict):
    name: str
    path: str = Field(description="File the suite was loaded from (as given).")
    description: str = ""
    vars: dict[str, Any] = Field(default_factory=dict)
    scenarios: list[Scenario]
