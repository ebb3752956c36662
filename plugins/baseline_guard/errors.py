"""Errors shared by engines, hooks and operators. No Airflow import, so engines can raise them."""

from __future__ import annotations


class BaselineGuardError(Exception):
    """Base class of the project's own errors."""


class ProductionWriteRefused(BaselineGuardError):
    """An action would write to an environment of kind ``production``: never allowed."""


class InvalidInput(BaselineGuardError, ValueError):
    """Input is malformed; the message says what was wrong and what is expected. Retrying cannot help."""
