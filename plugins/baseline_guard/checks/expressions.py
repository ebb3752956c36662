"""Templates (``{{ name }}``) and a small, safe arithmetic language for business-check suites.

A template is ``{{ expr }}`` inside a string. ``expr`` is a variable (``hotel_id``), an environment
field (``env.routing_key``) or arithmetic over them (``price * nights + 10``). Expressions are parsed
with :mod:`ast` and only names, numbers, ``env.<field>`` and ``+ - * / // %`` (and parentheses) are
allowed: nothing is ever passed to ``eval``.

A string that is exactly one template keeps the value's type (``"{{ nights }}"`` gives ``3``, not
``"3"``), so a captured number can be sent back in a JSON body as a number.
"""

from __future__ import annotations

import ast
import functools
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from baseline_guard.errors import ExpressionError

TEMPLATE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
ENV_FIELDS = frozenset({"name", "routing_key", "base_url"})

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}


@functools.lru_cache(maxsize=4096)
def parse(expression: str) -> ast.expr:
    """Parse ``expression`` and check it uses only the allowed syntax; return its AST body (cached)."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse expression {expression!r}: {exc.msg}") from None
    for node in ast.walk(tree.body):
        if isinstance(node, ast.Attribute):
            if not (isinstance(node.value, ast.Name) and node.value.id == "env"):
                raise ExpressionError(f"in {expression!r}: only env.<field> may use a dot")
            if node.attr not in ENV_FIELDS:
                raise ExpressionError(
                    f"in {expression!r}: unknown field env.{node.attr}; expected one of "
                    + ", ".join(f"env.{f}" for f in sorted(ENV_FIELDS))
                )
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                raise ExpressionError(f"in {expression!r}: operator not allowed; use + - * / // %")
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                raise ExpressionError(f"in {expression!r}: operator not allowed; use + - * / // %")
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, int | float) or isinstance(node.value, bool):
                raise ExpressionError(f"in {expression!r}: only numbers may be written literally")
        elif not isinstance(node, ast.Name | ast.Load | ast.operator | ast.unaryop):
            raise ExpressionError(
                f"in {expression!r}: {type(node).__name__} is not allowed; expected variables, "
                "numbers, env.<field> and + - * / // %"
            )
    return tree.body


def names_in(expression: str) -> set[str]:
    """Variables an expression reads (``env`` excluded: its fields are checked by :func:`parse`)."""
    body = parse(expression)
    return {n.id for n in ast.walk(body) if isinstance(n, ast.Name) and n.id != "env"}


def evaluate(expression: str, variables: Mapping[str, Any]) -> Any:
    """Evaluate ``expression`` against ``variables`` (``env`` is a mapping of environment fields)."""
    return _eval(parse(expression), variables, expression)


def _eval(node: ast.expr, variables: Mapping[str, Any], source: str) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in variables:
            raise ExpressionError(f"unknown variable {node.id!r} in {source!r}")
        return variables[node.id]
    if isinstance(node, ast.Attribute):
        return variables["env"].get(node.attr)
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_number(_eval(node.operand, variables, source), source))
    if isinstance(node, ast.BinOp):
        left = _number(_eval(node.left, variables, source), source)
        right = _number(_eval(node.right, variables, source), source)
        try:
            return _BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ExpressionError(f"division by zero in {source!r}") from None
    raise ExpressionError(f"cannot evaluate {source!r}")  # unreachable after parse()


def _number(value: Any, source: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExpressionError(f"arithmetic in {source!r} needs numbers, got {value!r}")
    return value


def template_expressions(text: str) -> Iterator[str]:
    """The expressions inside every ``{{ ... }}`` of ``text``."""
    for match in TEMPLATE.finditer(text):
        yield match.group(1)


def render_braces_away(expression: str) -> str:
    """``"{{ price }} * 3"`` -> ``"(price) * 3"``: expression fields may be written with or without braces."""
    return TEMPLATE.sub(lambda m: f"({m.group(1)})", expression)


def render(value: Any, variables: Mapping[str, Any]) -> Any:
    """Render templates in ``value`` (a string, or lists/dicts of them, recursively)."""
    if isinstance(value, str):
        return _render_string(value, variables)
    if isinstance(value, list):
        return [render(item, variables) for item in value]
    if isinstance(value, dict):
        return {render(k, variables): render(v, variables) for k, v in value.items()}
    return value


def _render_string(text: str, variables: Mapping[str, Any]) -> Any:
    whole = TEMPLATE.fullmatch(text)
    if whole:
        return evaluate(whole.group(1), variables)
    return TEMPLATE.sub(lambda m: _as_text(evaluate(m.group(1), variables)), text)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def referenced_names(value: Any) -> set[str]:
    """Every variable named in the templates of ``value`` (checked at load time)."""
    if isinstance(value, str):
        return set().union(*(names_in(expr) for expr in template_expressions(value)))
    if isinstance(value, list):
        return set().union(*(referenced_names(item) for item in value))
    if isinstance(value, dict):
        return set().union(*(referenced_names(k) | referenced_names(v) for k, v in value.items()))
    return set()
