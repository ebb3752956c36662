"""Operator test fixtures."""

from __future__ import annotations

import pytest
from local_stack.inline_deferral import DeferrableRun


@pytest.fixture
def run_deferrable() -> DeferrableRun:
    return DeferrableRun()
