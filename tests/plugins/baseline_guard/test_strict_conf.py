"""Strict run conf: unknown keys named with the allowed ones, sizes bounded, messages short."""

from __future__ import annotations

import pytest
from baseline_guard.errors import InvalidInput
from baseline_guard.strict_conf import LIMITS, check_conf, excerpt

RESTORE_PARAMS = ["environment", "backup_id", "databases"]


def test_declared_keys_pass() -> None:
    check_conf("test_data_restore", {"environment": "proj-a", "backup_id": "latest:pre_test"}, RESTORE_PARAMS)
    check_conf("baseline_schema_sync", {}, [])


def test_a_typo_is_named_with_the_allowed_keys_and_a_suggestion() -> None:
    with pytest.raises(InvalidInput) as err:
        check_conf("test_data_restore", {"enviroment": "proj-a", "backup_id": "latest"}, RESTORE_PARAMS)
    assert str(err.value) == (
        "unknown conf key 'enviroment' for DAG test_data_restore (did you mean 'environment'?); "
        "allowed keys: backup_id, databases, environment"
    )


def test_a_dag_without_params_takes_no_conf() -> None:
    with pytest.raises(
        InvalidInput,
        match=r"unknown conf key 'environment' for DAG baseline_schema_sync; "
        r"allowed keys: none: this DAG takes no conf",
    ):
        check_conf("baseline_schema_sync", {"environment": "proj-a"}, [])


def test_many_unknown_keys_are_listed_briefly() -> None:
    conf = {f"k{i:03}": i for i in range(50)}
    with pytest.raises(InvalidInput) as err:
        check_conf("business_check", conf, ["environment"])
    message = str(err.value)
    assert "unknown conf keys 'k000', 'k001', 'k002', 'k003', 'k004' and 45 more" in message
    assert len(message) < 200


@pytest.mark.parametrize(
    ("conf", "expected"),
    [
        (
            {"environment": "x" * (LIMITS.max_string_chars + 1)},
            f"conf.environment is a string of {LIMITS.max_string_chars + 1} characters; at most 1024",
        ),
        (
            {"tags": ["smoke"] * (LIMITS.max_array_items + 1)},
            f"conf.tags is an array of {LIMITS.max_array_items + 1} items; at most 200",
        ),
        ({"tags": ["x" * 1000] * 20}, "bytes as JSON; at most 16384 bytes are accepted"),
        ({"deep": [[[[[[["x"]]]]]]]}, "conf.deep[0][0][0][0][0][0] is nested deeper than 6 levels"),
    ],
)
def test_sizes_are_bounded_before_keys_are_looked_at(conf: dict, expected: str) -> None:
    with pytest.raises(InvalidInput) as err:
        check_conf("business_check", conf, ["environment", "tags", "deep"])
    assert expected in str(err.value)
    assert len(str(err.value)) < 300  # the value itself is never quoted


def test_a_huge_unknown_key_is_refused_without_quoting_it() -> None:
    key = "k" * 1_000_000
    with pytest.raises(InvalidInput) as err:
        check_conf("test_data_restore", {key: 1}, RESTORE_PARAMS)
    assert "bytes as JSON" in str(err.value) and len(str(err.value)) < 200


def test_excerpt() -> None:
    assert excerpt("short") == "short"
    assert excerpt("a" * 100, 10) == "aaaaaaaaaa… (90 more characters)"
