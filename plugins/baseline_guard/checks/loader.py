"""Load business-check suites from YAML, failing before any run with a message that points at the spot.

A bad file fails with the file, scenario, step and field, e.g.::

    include/scenarios/booking.yaml: scenario 'book-paris-double' step 3 'create quote':
    assert.status: Input should be a valid integer

Beyond the schema, the loader checks that every ``{{ variable }}`` a step uses is defined (suite or
scenario ``vars``, ``env.*``, or a capture of an earlier step) and that scenario names are unique.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from baseline_guard.checks import expressions
from baseline_guard.checks.suite import Scenario, Suite, SuiteFile
from baseline_guard.errors import ExpressionError, InvalidInput

SUITE_SUFFIXES = (".yaml", ".yml")
# libyaml's parser is ~10x faster than the pure-Python one on large generated suites.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_suites(path_or_dir: str | Path) -> list[Suite]:
    """Load one suite file, or every ``*.yaml``/``*.yml`` file in a directory (sorted by name).

    :raises InvalidInput: a file is missing, not YAML, or does not match the suite schema; the
        message names the file, the scenario, the step and the field.
    """
    root = Path(path_or_dir)
    if root.is_dir():
        files = sorted(p for p in root.iterdir() if p.suffix in SUITE_SUFFIXES and p.is_file())
        if not files:
            raise InvalidInput(f"{root}: no suite files (*.yaml) in this directory")
    elif root.is_file():
        files = [root]
    else:
        raise InvalidInput(f"{root}: no such suite file or directory")
    suites = [load_suite(p) for p in files]
    _check_unique_names(suites)
    return suites


def load_suite(path: str | Path) -> Suite:
    """Load and validate one suite file."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_YamlLoader)
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read suite file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidInput(
            f"{path}: expected a mapping with 'scenarios' at the top, got {type(raw).__name__}"
        )
    try:
        parsed = SuiteFile.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(_describe(path, raw, exc)) from None
    suite = Suite(
        name=parsed.name or path.stem,
        path=str(path),
        description=parsed.description,
        vars=parsed.vars,
        scenarios=parsed.scenarios,
    )
    for scenario in suite.scenarios:
        _check_variables(path, suite, scenario)
    return suite


def _describe(path: Path, raw: dict[str, Any], exc: ValidationError) -> str:
    """One line per validation error: file, scenario, step, dotted field, pydantic's message."""
    lines: dict[str, list[str]] = {}
    for error in exc.errors():
        loc = list(error["loc"])
        where = str(path)
        if len(loc) >= 2 and loc[0] == "scenarios" and isinstance(loc[1], int):
            scenario = _get(raw, ["scenarios", loc[1]])
            where += f": scenario {_label(scenario, loc[1])}"
            loc = loc[2:]
            if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
                step = _get(scenario, ["steps", loc[1]])
                where += f" step {loc[1] + 1} {_label(step, loc[1])}"
                loc = loc[2:]
        field = ".".join(str(part) for part in loc if not _is_union_tag(part)) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        lines.setdefault(f"{where}: {field}", []).append(message)
    # A union field (``status: int | list[int]``) fails once per member: say it on one line.
    return "\n".join(f"{spot}: {' or '.join(messages)}" for spot, messages in lines.items())


def _is_union_tag(part: Any) -> bool:
    # pydantic adds the union member's type name to the location (e.g. 'int', 'list[int]', 'str').
    return isinstance(part, str) and (part[:1].islower() and ("[" in part or part in {"int", "str", "float"}))


def _get(node: Any, keys: list[Any]) -> Any:
    for key in keys:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _label(node: Any, index: int) -> str:
    name = node.get("name") if isinstance(node, dict) else None
    return repr(str(name)) if name is not None else f"#{index + 1}"


def _check_variables(path: Path, suite: Suite, scenario: Scenario) -> None:
    known = set(suite.vars) | set(scenario.vars)
    for number, step in enumerate(scenario.steps, start=1):
        where = f"{path}: scenario {scenario.name!r} step {number} {step.name!r}"
        for field, value in step.templated_fields().items():
            # Assertions may use what this step captures (total == price_per_night * nights).
            visible = known | set(step.capture) if field.startswith("assert.") else known
            try:
                used = expressions.referenced_names(value)
            except ExpressionError as exc:
                raise InvalidInput(f"{where}: {field}: {exc}") from None
            unknown = sorted(used - visible)
            if unknown:
                raise InvalidInput(
                    f"{where}: {field}: unknown variable {', '.join(map(repr, unknown))}; "
                    f"defined here: {_known_list(visible)} (suite/scenario vars, env.*, captures of earlier steps)"
                )
        known |= set(step.capture)


def _known_list(known: Iterable[str]) -> str:
    names = sorted(known)
    return ", ".join(names) if names else "none"


def _check_unique_names(suites: list[Suite]) -> None:
    seen: dict[tuple[str, str], str] = {}
    suite_paths: dict[str, str] = {}
    for suite in suites:
        if suite.name in suite_paths:
            raise InvalidInput(
                f"{suite.path}: suite name {suite.name!r} is already used by {suite_paths[suite.name]}"
            )
        suite_paths[suite.name] = suite.path
        for scenario in suite.scenarios:
            key = (suite.name, scenario.name)
            if key in seen:
                raise InvalidInput(f"{suite.path}: scenario {scenario.name!r} appears twice in this suite")
            seen[key] = suite.path
