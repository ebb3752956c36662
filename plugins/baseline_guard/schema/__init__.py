"""Schema sync engine: diff a production schema against a baseline, classify, apply the safe part.

No Airflow import: :mod:`baseline_guard.operators.schema_sync` wraps it for DAGs.

Engine names are exported lazily: importing one light module of this package loads nothing else.
``classify`` is not among them: the submodule of that name would shadow it once imported.
"""

from __future__ import annotations

from baseline_guard._lazy import lazy_exports

_EXPORTS = {
    "ClassifiedStatement": "models",
    "Residual": "snapshot",
    "SchemaDiff": "models",
    "SyncResult": "models",
    "apply_converging": "apply",
    "apply_statements": "apply",
    "diff_schemas": "sync",
    "sync_schema": "sync",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
