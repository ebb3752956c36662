"""Strict run input: a DAG run's conf may only name the DAG's declared params, and its size is bounded.

Airflow validates each param's value against its schema but accepts keys no param declares, so a
typo (``enviroment``) silently falls back to the default. :func:`check_conf` refuses such keys,
naming the key and listing the allowed ones, and bounds the conf as a whole and every string and
array in it. The REST guard (``baseline_guard.rest_guard``) applies it before a run exists; the
task policy in ``airflow_local_settings`` applies it again when each task starts.

No Airflow import: plain data in, :class:`~baseline_guard.errors.InvalidInput` out.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from baseline_guard.errors import InvalidInput

EXCERPT_CHARS = 80


@dataclass(frozen=True)
class ConfLimits:
    """Bounds every run conf must keep, whatever its params declare."""

    max_bytes: int = 16_384  # the conf as compact JSON
    max_string_chars: int = 1_024  # each string value (and each key)
    max_array_items: int = 200  # each array
    max_depth: int = 6  # nesting of objects and arrays


LIMITS = ConfLimits()


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def check_conf(
    dag_id: str, conf: Mapping[str, Any], allowed_keys: Iterable[str], limits: ConfLimits = LIMITS
) -> None:
    """Refuse unknown keys and oversize values; the message says what was wrong and what is expected."""
    check_size(conf, limits)
    allowed = sorted(allowed_keys)
    unknown = sorted(k for k in conf if k not in allowed)
    if unknown:
        raise InvalidInput(unknown_keys_message(dag_id, unknown, allowed))


def unknown_keys_message(dag_id: str, unknown: list[str], allowed: list[str]) -> str:
    named = ", ".join(repr(excerpt(k, 40)) for k in unknown[:5]) + (
        f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    )
    hint = ""
    if len(unknown) == 1 and (close := difflib.get_close_matches(unknown[0], allowed, n=1)):
        hint = f" (did you mean {close[0]!r}?)"
    expected = ", ".join(allowed) if allowed else "none: this DAG takes no conf"
    noun = "key" if len(unknown) == 1 else "keys"
    return f"unknown conf {noun} {named} for DAG {dag_id}{hint}; allowed keys: {expected}"


def check_size(conf: Mapping[str, Any], limits: ConfLimits = LIMITS) -> None:
    """Bound the conf as a whole, each string, each array and the nesting depth."""
    size = len(json.dumps(conf, separators=(",", ":"), ensure_ascii=False, default=str).encode())
    if size > limits.max_bytes:
        raise InvalidInput(f"conf is {size} bytes as JSON; at most {limits.max_bytes} bytes are accepted")
    _check_value("conf", conf, 0, limits)


def _check_value(path: str, value: Any, depth: int, limits: ConfLimits) -> None:
    if depth > limits.max_depth:
        raise InvalidInput(f"{excerpt(path)} is nested deeper than {limits.max_depth} levels")
    if isinstance(value, str):
        if len(value) > limits.max_string_chars:
            raise InvalidInput(
                f"{excerpt(path)} is a string of {len(value)} characters; "
                f"at most {limits.max_string_chars} are accepted"
            )
    elif isinstance(value, list):
        if len(value) > limits.max_array_items:
            raise InvalidInput(
                f"{excerpt(path)} is an array of {len(value)} items; at most {limits.max_array_items} are accepted"
            )
        for i, item in enumerate(value):
            _check_value(f"{path}[{i}]", item, depth + 1, limits)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if len(str(key)) > limits.max_string_chars:
                raise InvalidInput(
                    f"{excerpt(path)} has a key of {len(str(key))} characters; "
                    f"at most {limits.max_string_chars} are accepted"
                )
            _check_value(f"{path}.{key}", item, depth + 1, limits)
