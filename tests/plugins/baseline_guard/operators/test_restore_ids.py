"""Restore ids survive the DAGs' native template rendering as the strings they are."""

from __future__ import annotations

import ast
import re

import pytest
from baseline_guard.operators.restore import new_restore_id


def test_a_restore_id_is_8_hex_and_never_renders_as_a_number() -> None:
    ids = {new_restore_id() for _ in range(20_000)}
    assert len(ids) > 19_900  # random, not derived from anything a caller sets
    for restore_id in ids:
        assert re.fullmatch(r"[0-9a-f]{8}", restore_id)
        # Airflow's NativeEnvironment turns a rendered string that is a Python literal into that
        # literal: "53522432" became the int 53522432 and failed every restore of its run
        with pytest.raises((ValueError, SyntaxError)):
            ast.literal_eval(restore_id)
