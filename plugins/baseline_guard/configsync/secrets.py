"""Which configuration values are secrets, by key name and by the look of the value. No Airflow.

A key name is a weak signal (``fx_source`` may hold a token, ``db_url`` a password), so a value is
also a secret when it looks like a credential: a URL with a password, a private key block, a
token of a known shape or a long high-entropy string. Callers register every value this module
returns with Airflow's secrets masker *before* anything is logged, and put only key names and
counts in logs, XCom and events.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

MASK = "***"

_SECRET_KEY = re.compile(
    r"(pass(word|wd)?|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|encryption[_-]?key|"
    r"(^|[_.-])key$|credential|auth|dsn|signing)",
    re.I,
)
# Shapes of well-known credentials: JWTs, PEM private keys, cloud and SaaS token prefixes.
_KNOWN_TOKEN = re.compile(
    r"(^eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}$|-----BEGIN [A-Z ]*PRIVATE KEY-----|"
    r"^(AKIA|ASIA)[A-Z0-9]{16}$|^(gh[pousr]_|glpat-|xox[abposr]-|sk-|sk_live_|rk_live_)[\w-]{10,})"
)
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9+/=_\-.~:]+$")
_HOST_NAME = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")  # smtp3.prod.example: a name, not a token
_HEX = re.compile(r"^[0-9a-fA-F]+$")
MIN_TOKEN_LENGTH = 16
MIN_TOKEN_ENTROPY = 3.5  # bits per character: random base64/hex is 4-6, words and hosts are lower


def is_secret_key(key: str) -> bool:
    """Whether a configuration key names a secret (password, pwd, token, key, credential...)."""
    return bool(_SECRET_KEY.search(key))


def url_password(value: str) -> str | None:
    """The password of a URL such as ``postgresql://user:pw@host/db``, else None."""
    if "://" not in value or "@" not in value:
        return None
    try:
        password = urlsplit(value.strip()).password
    except ValueError:
        return None
    return unquote(password) if password else None


def shannon_entropy(value: str) -> float:
    """Bits per character of ``value``'s character distribution."""
    if not value:
        return 0.0
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def looks_like_token(value: str) -> bool:
    """A known credential shape, or a long random-looking string without spaces."""
    value = value.strip()
    if _KNOWN_TOKEN.search(value):
        return True
    if len(value) < MIN_TOKEN_LENGTH or not _TOKEN_CHARS.match(value) or "://" in value:
        return False
    if _HOST_NAME.match(value):
        return False
    classes = sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
    long_hex = len(value) >= 32 and _HEX.match(value) is not None
    return (classes >= 3 or long_hex) and shannon_entropy(value) >= MIN_TOKEN_ENTROPY


def is_secret(key: str, value: str) -> bool:
    """Whether the value of ``key`` must never be shown: by its key name or by its look."""
    return bool(value) and (is_secret_key(key) or url_password(value) is not None or looks_like_token(value))


def secret_values(values: Mapping[str, str]) -> list[str]:
    """Every string to register with the secrets masker: secret values, and URL passwords on their own."""
    found: list[str] = []
    for key, value in values.items():
        if not is_secret(key, value):
            continue
        found.append(value)
        if (password := url_password(value)) is not None:
            found.append(password)
    return found


def secret_keys(values: Mapping[str, str]) -> list[str]:
    """The keys whose values are secrets, sorted (key names are fit for logs; values are not)."""
    return sorted(k for k, v in values.items() if is_secret(k, v))


def masked(values: Mapping[str, str]) -> dict[str, str]:
    """A copy with every secret value replaced by ``***``."""
    return {k: (MASK if is_secret(k, v) else v) for k, v in values.items()}
