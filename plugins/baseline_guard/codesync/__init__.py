"""Code sync: which version each service runs in production, which baseline services must follow
(:mod:`.versions`), and what to tell about a sync (:mod:`.summary`). Plain Python, no Airflow.

Engine names are exported lazily: importing the package loads nothing else.
"""

from __future__ import annotations

from baseline_guard._lazy import lazy_exports

_EXPORTS = {
    "plan_rollouts": "versions",
    "production_versions": "versions",
    "reconcile": "versions",
    "summary_body": "summary",
    "summary_title": "summary",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
