"""Loading suites: valid files load; every kind of bad file fails before a run, pointing at the spot."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from baseline_guard.checks import load_suites
from baseline_guard.errors import InvalidInput

VALID = """
    description: booking flows
    vars: {guest: Ada Lovelace, nights: 3}
    scenarios:
      - name: book-paris-double
        tags: [smoke, booking]
        steps:
          - name: search paris
            module: search
            interface: GET /hotels
            path: /hotel-search/hotels
            query: {city: Paris}
            capture: {hotel_id: "$.hotels[0].id"}
            assert: {status: 200, max_ms: 1000, json: [{path: "$.count", gte: 1}]}
          - name: create quote
            module: pricing
            interface: POST /quotes
            method: post
            path: /quote/quotes
            json: {hotel_id: "{{ hotel_id }}", room_type: double, nights: "{{ nights }}", guests: 2}
            capture: {price: $.price_per_night, instance: {header: X-Instance}}
            retry: {count: 2, backoff_ms: 50}
            assert:
              status: [200, 201]
              json:
                - {path: $.total, equals_expr: "{{ price }} * nights"}
"""


def write(tmp_path: Path, text: str, name: str = "booking.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(InvalidInput) as info:
        load_suites(path)
    return str(info.value)


def test_valid_suite_loads_with_defaults_and_shorthands(tmp_path: Path) -> None:
    [suite] = load_suites(write(tmp_path, VALID))
    assert suite.name == "booking"
    assert suite.vars == {"guest": "Ada Lovelace", "nights": 3}
    scenario = suite.scenarios[0]
    assert scenario.tags == ["smoke", "booking"]
    search, quote = scenario.steps
    assert search.method == "GET" and search.capture["hotel_id"].jsonpath == "$.hotels[0].id"
    assert quote.method == "POST" and quote.capture["instance"].header == "X-Instance"
    assert quote.assert_.status == [200, 201] and quote.retry is not None and quote.retry.count == 2


def test_directory_loads_every_yaml_file_sorted(tmp_path: Path) -> None:
    write(tmp_path, VALID, "b.yaml")
    write(tmp_path, VALID.replace("book-paris-double", "other"), "a.yml")
    (tmp_path / "notes.txt").write_text("not a suite")
    assert [s.name for s in load_suites(tmp_path)] == ["a", "b"]


def test_repository_suites_load() -> None:
    suites = load_suites(Path(__file__).resolve().parents[4] / "include" / "scenarios")
    assert sum(len(s.scenarios) for s in suites) >= 30


def test_wrong_type_names_file_scenario_step_and_field(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("status: [200, 201]", "status: created"))
    assert message.startswith(
        str(tmp_path / "booking.yaml") + ": scenario 'book-paris-double' step 2 'create quote'"
    )
    assert "assert.status: Input should be a valid integer" in message


def test_unknown_field_is_refused(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("retry:", "retyr:"))
    assert "step 2 'create quote': retyr: Extra inputs are not permitted" in message


def test_missing_required_field(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("            module: search\n", ""))
    assert "step 1 'search paris': module: Field required" in message


def test_unknown_variable_names_what_is_defined(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("{{ hotel_id }}", "{{ hotel }}"))
    assert "step 2 'create quote': json: unknown variable 'hotel'" in message
    assert "guest, hotel_id, nights" in message


def test_capture_of_a_later_step_is_not_visible_earlier(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("query: {city: Paris}", "query: {city: '{{ price }}'}"))
    assert "step 1 'search paris': query: unknown variable 'price'" in message


def test_expression_with_code_is_refused(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace('"{{ price }} * nights"', "\"__import__('os').getcwd()\""))
    assert "assert.json.0.equals_expr" in message and "Call is not allowed" in message


def test_bad_jsonpath_regex_and_env_field(tmp_path: Path) -> None:
    assert "not a valid JSONPath '$.count[':" in load_error(
        tmp_path, VALID.replace('"$.count"', '"$.count["')
    )
    bad_regex = VALID.replace("gte: 1", "matches: '([a-z'")
    assert "assert.json.0.matches: not a valid regular expression" in load_error(tmp_path, bad_regex)
    bad_env = VALID.replace("city: Paris", "city: '{{ env.token }}'")
    assert "unknown field env.token" in load_error(tmp_path, bad_env)


def test_assertion_without_a_check_and_capture_without_source(tmp_path: Path) -> None:
    assert "makes no check" in load_error(tmp_path, VALID.replace("gte: 1", "each: true"))
    no_source = VALID.replace("instance: {header: X-Instance}", "instance: {}")
    assert "capture.instance: a capture needs exactly one of: jsonpath, header" in load_error(
        tmp_path, no_source
    )


def test_structural_errors(tmp_path: Path) -> None:
    assert "expected a mapping" in load_error(tmp_path, "- just a list\n")
    assert "not valid YAML" in load_error(tmp_path, "scenarios: [unclosed\n")
    duplicate = VALID + VALID.split("scenarios:\n")[1]
    assert "scenario 'book-paris-double' appears twice" in load_error(tmp_path, duplicate)
    with pytest.raises(InvalidInput, match="no such suite file"):
        load_suites(tmp_path / "missing.yaml")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidInput, match=r"no suite files \(\*\.yaml\)"):
        load_suites(empty)
