"""Operator test fixtures."""

from __future__ import annotations

import pytest
from deferred_runs import DeferrableRun


@pytest.fixture
def run_deferrable() -> DeferrableRun:
    return DeferrableRun()
