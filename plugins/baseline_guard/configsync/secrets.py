"""Which configuration values are secrets: the project's one masking rule (:mod:`baseline_guard.masking`).

A key name is a weak signal (``fx_source`` may hold a token, ``db_url`` a password), so a value is
also a secret when it looks like a credential or holds one. Callers register every value
:func:`secret_values` returns with Airflow's secrets masker *before* anything is logged, and put
only key names and counts in logs, XCom and events. No Airflow.
"""

from __future__ import annotations

from baseline_guard.masking import (
    MASK,
    is_secret,
    is_secret_key,
    looks_like_token,
    masked,
    secret_keys,
    secret_values,
    shannon_entropy,
    url_password,
)

__all__ = [
    "MASK",
    "is_secret",
    "is_secret_key",
    "looks_like_token",
    "masked",
    "secret_keys",
    "secret_values",
    "shannon_entropy",
    "url_password",
]
