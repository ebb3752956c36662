"""Schema sync engine: diff a production schema against a baseline, classify, apply the safe part.

No Airflow import: :mod:`baseline_guard.operators.schema_sync` wraps it for DAGs.
"""

from __future__ import annotations

from baseline_guard.schema.apply import apply_converging, apply_statements
from baseline_guard.schema.classify import classify
from baseline_guard.schema.errors import DatabaseUnreachable, SchemaApplyFailed, SchemaSyncError
from baseline_guard.schema.models import ClassifiedStatement, SchemaDiff, SyncResult
from baseline_guard.schema.snapshot import Residual
from baseline_guard.schema.sync import diff_schemas, sync_schema

__all__ = [
    "ClassifiedStatement",
    "DatabaseUnreachable",
    "Residual",
    "SchemaApplyFailed",
    "SchemaDiff",
    "SchemaSyncError",
    "SyncResult",
    "apply_converging",
    "apply_statements",
    "classify",
    "diff_schemas",
    "sync_schema",
]
