"""Test-config sync: the test configuration each baseline service should run (:mod:`.test_configs`),
production configuration changes that came without one and the on-call decisions about them
(:mod:`.decisions`), and which values are secrets (:mod:`.secrets`). Plain Python, no Airflow.

Engine names are exported lazily; the decision options (HITL options, needed when a DAG is parsed)
live here so that parsing loads nothing else.
"""

from __future__ import annotations

from baseline_guard._lazy import lazy_exports

DECISION_UPDATED_BY_HAND = "Test config updated by hand"
DECISION_NOT_NEEDED = "Not needed for the baseline"
DECISIONS = [DECISION_UPDATED_BY_HAND, DECISION_NOT_NEEDED]

_EXPORTS = {
    "MAX_CONFIG_BYTES": "test_configs",
    "MAX_CONFIG_KEYS": "test_configs",
    "STATUS_ASKED": "decisions",
    "STATUS_DECIDED": "decisions",
    "STATUS_RECORDED": "decisions",
    "STATUS_TIMED_OUT": "decisions",
    "applies_to_current": "decisions",
    "asked_record": "decisions",
    "check_config_size": "test_configs",
    "config_summary": "test_configs",
    "decided_record": "decisions",
    "releases_with_test_config": "test_configs",
    "secret_keys": "secrets",
    "secret_values": "secrets",
    "timed_out_record": "decisions",
    "unmatched_config_changes": "decisions",
    "user_name": "decisions",
}
__all__ = sorted([*_EXPORTS, "DECISIONS", "DECISION_NOT_NEEDED", "DECISION_UPDATED_BY_HAND"])
__getattr__ = lazy_exports(__name__, _EXPORTS)
