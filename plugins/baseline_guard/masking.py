"""Which strings are secrets, and text with them masked: one rule for config sync, messages and reports.

Plain Python, no Airflow. Callers that log register what :func:`find_secrets` returns with
Airflow's own masker (``airflow.sdk.log.mask_secret``) before anything is logged; what leaves the
process (a chat message, a check report) goes through :func:`mask_text` / :func:`mask_structure`.

Two signals, either one is enough:

- **The key's name** (:func:`is_secret_key`): its words (``db_password``, ``dbPassword``,
  ``DB-PASSWORD`` all give ``password``) against secret words in several languages (``pw``,
  ``pwd``, ``passwort``, ``kennwort``, ``contraseña``, ``mot_de_passe``, ``пароль``, ``密码``,
  ``パスワード``...) and phrases (``api_key``, ``client_secret``, ``access_token``...). Whole words,
  so ``passenger_count``, ``compass``, ``bypass_cache`` and ``author`` are not secrets. A key that
  *describes* a secret rather than holding it is not one either: a qualifier word such as
  ``policy``, ``length``, ``min``, ``max``, ``expiry``, ``ttl``, ``file`` or ``path``
  (``password_policy_min_length``, ``token_ttl``, ``password_file``) or a key that counts them
  (``max_tokens``). Its value is still checked by its look.
- **The value's look**: a URL with a password (``postgresql://app:p#ss@db``, ``redis://:pw@h``,
  ``amqp://``, ``s3://``...), a secret query parameter (``?api_key=``, ``&token=``, JDBC
  ``?password=``, ``X-Amz-Signature``), a chat webhook URL, ``key=value`` pairs in libpq/JDBC/ODBC
  strings and JSON inside a string (``password=...``, ``"secret": "..."``), tokens by their
  published prefixes (AWS ``AKIA``/``ASIA``, GitHub ``ghp_``/``github_pat_``, GitLab ``glpat-``,
  Slack ``xox?-``, Google ``AIza``/``ya29.``, Stripe ``sk_live_``, OpenAI ``sk-``, npm, PyPI,
  Vault, SendGrid...), JWTs, PEM private keys, ``Bearer``/``Basic`` credentials, and long
  random-looking strings (entropy). In free text (an error message) hex strings and UUIDs are kept:
  checksums, trace ids and backup ids are what a reader needs; a whole config value that is long
  hex is masked.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

MASK = "***"

# Words that name a secret, whole words of a key (lowercase; accents kept and stripped).
SECRET_WORDS = frozenset(
    [
        "password",
        "passwords",
        "passwd",
        "passwort",
        "pass",
        "pw",
        "pwd",
        "pword",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "tokens",
        "apikey",
        "apikeys",
        "credential",
        "credentials",
        "creds",
        "cred",
        "auth",
        "authorization",
        "dsn",
        "jwt",
        "bearer",
        "otp",
        "cookie",
        "cookies",
        "sessionid",
        "signature",
        "sig",
        "signing",
        "privatekey",
        "kennwort",
        "passord",
        "wachtwoord",
        "contraseña",
        "contrasena",
        "senha",
        "haslo",
        "hasło",
        "salasana",
        "lösenord",
        "losenord",
        "adgangskode",
        "sifre",
        "şifre",
        "jelszo",
        "jelszó",
        "heslo",
        "geslo",
        "lozinka",
        "parola",
        "clave",
        "passe",
        "mdp",
        "motdepasse",
    ]
)
# Secret words also found inside a longer word (``dbpassword``, ``пароль_бд``), and non-Latin
# scripts, where words are not separated by ``_``.
SECRET_SUBSTRINGS = (
    "password",
    "passwd",
    "passwort",
    "kennwort",
    "secret",
    "credential",
    "apikey",
    "contraseña",
    "contrasena",
    "motdepasse",
    "wachtwoord",
    "пароль",
    "密码",
    "密碼",
    "口令",
    "パスワード",
    "비밀번호",
    "암호",
    "كلمةالمرور",
    "كلمةالسر",
    "סיסמה",
    "पासवर्ड",
    "matkhau",
    "mậtkhẩu",
)
# Two words that together name a secret (joined without separators).
SECRET_PHRASES = frozenset(
    [
        "accesskey",
        "secretkey",
        "privatekey",
        "encryptionkey",
        "signingkey",
        "masterkey",
        "clientsecret",
        "authtoken",
        "accesstoken",
        "refreshtoken",
        "sessiontoken",
        "idtoken",
        "connectionstring",
        "connstring",
        "accountkey",
        "sharedaccesskey",
        "sastoken",
        "webhookurl",
        "hookurl",
    ]
)
# A key holding *about* a secret, not the secret: its value is checked by its look only.
QUALIFIER_WORDS = frozenset(
    [
        "policy",
        "policies",
        "length",
        "len",
        "min",
        "max",
        "minimum",
        "maximum",
        "count",
        "counts",
        "number",
        "expiry",
        "expires",
        "expiration",
        "expired",
        "ttl",
        "age",
        "lifetime",
        "rotation",
        "rotated",
        "rotate",
        "reset",
        "changed",
        "enabled",
        "required",
        "strength",
        "complexity",
        "pattern",
        "regex",
        "rule",
        "rules",
        "file",
        "path",
        "dir",
        "type",
        "kind",
        "mode",
        "method",
        "scheme",
        "provider",
        "header",
        "name",
        "field",
        "prompt",
        "label",
        "endpoint",
        "limit",
        "limits",
        "rate",
        "threshold",
        "through",
        "id",
        "ids",
        "user",
        "username",
        "host",
        "port",
        "url",
        "uri",
        "realm",
        "version",
        "format",
        "algorithm",
        "alg",
    ]
)
LEADING_QUALIFIERS = frozenset(
    {"max", "min", "num", "n", "count", "total", "use", "uses", "has", "is", "allow"}
)
# ``<something>_key`` is a secret unless the something says which kind of non-secret key it is.
NON_SECRET_KEY_KINDS = frozenset(
    [
        "public",
        "pub",
        "cache",
        "sort",
        "partition",
        "primary",
        "foreign",
        "routing",
        "route",
        "shard",
        "lookup",
        "group",
        "idempotency",
        "dedup",
        "dedupe",
        "map",
        "object",
        "s3",
        "bucket",
        "row",
        "index",
        "dictionary",
        "json",
        "unique",
        "natural",
        "business",
        "composite",
        "surrogate",
        "cluster",
        "distribution",
        "message",
    ]
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD_SPLIT = re.compile(r"[\W_]+", re.UNICODE)


def key_words(key: str) -> list[str]:
    """``dbPassword2`` -> ``["db", "password"]``: lowercase words, trailing digits of a word dropped."""
    words = _WORD_SPLIT.split(_CAMEL.sub("_", key).lower())
    return [w.rstrip("0123456789") if len(w.rstrip("0123456789")) >= 3 else w for w in words if w]


def is_secret_key(key: str) -> bool:
    """Whether a key (config key, header, query parameter, JSON field) names a secret."""
    words = key_words(key)
    if not words:
        return False
    if words[0] in LEADING_QUALIFIERS or any(w in QUALIFIER_WORDS for w in words[1:]):
        return False
    joined = "".join(words)
    if any(w in SECRET_WORDS for w in words) or any(s in joined for s in SECRET_SUBSTRINGS):
        return True
    if any("".join(words[i : i + 2]) in SECRET_PHRASES for i in range(len(words))):
        return True
    return words[-1] == "key" and len(words) > 1 and words[-2] not in NON_SECRET_KEY_KINDS


# --- values -------------------------------------------------------------------------------------

_PREFIXED_TOKENS = (
    r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16}",  # AWS access key ids
    r"gh[pousr]_[A-Za-z0-9]{30,}",  # GitHub
    r"github_pat_[A-Za-z0-9_]{22,}",
    r"gl(?:pat|dt|rt|ptt|soat|cbt|imt|agent)-[A-Za-z0-9_-]{20,}",  # GitLab
    r"xox[abposre]-[A-Za-z0-9-]{10,}",  # Slack
    r"xapp-\d-[A-Za-z0-9-]{10,}",
    r"AIza[0-9A-Za-z_-]{35}",  # Google API key
    r"ya29\.[0-9A-Za-z_-]{20,}",  # Google OAuth access token
    r"(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}",  # Stripe secret / restricted keys
    r"whsec_[0-9A-Za-z]{20,}",  # Stripe webhook secret
    r"sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}",  # OpenAI, Anthropic
    r"npm_[A-Za-z0-9]{36}",
    r"pypi-[A-Za-z0-9_-]{50,}",
    r"hv[sb]\.[A-Za-z0-9_-]{24,}",  # HashiCorp Vault
    r"SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}",  # SendGrid
    r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}",  # Shopify
    r"dop_v1_[a-f0-9]{64}",  # DigitalOcean
    r"dapi[0-9a-f]{32}",  # Databricks
    r"ATATT3[A-Za-z0-9_=-]{30,}",  # Atlassian
    r"key-[0-9a-f]{32}",  # Mailgun
    r"AC[0-9a-f]{32}|SK[0-9a-f]{32}",  # Twilio
)
_TOKEN_RE = re.compile(r"(?<![A-Za-z0-9_])(?:" + "|".join(_PREFIXED_TOKENS) + r")(?![A-Za-z0-9_])")
_JWT_RE = re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")
_PEM_RE = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\Z)",
    re.S,
)
_AUTH_SCHEME_RE = re.compile(r"\b(?:Bearer|Basic|Token|Digest)\s+([A-Za-z0-9._~+/=-]{8,})")
# scheme://user:password@host: the password is everything between the first ':' and the '@'
_USERINFO_RE = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://([^\s/@:]*):([^\s/@]+)@")
_QUERY_PARAM_RE = re.compile(r"(?<=[?&;])([A-Za-z0-9_.\-\[\]]+)=([^&#;\s\"'<>]+)")
_WEBHOOK_RE = re.compile(
    r"https?://(?:hooks\.slack\.com/(?:services|workflows|triggers)/"
    r"|(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/"
    r"|[\w.-]*webhook\.office\.com/webhook\w*/"
    r"|outlook\.office\.com/webhook/"
    r"|api\.telegram\.org/bot"
    r"|chat\.googleapis\.com/v1/spaces/)"
    r"([^\s\"'<>?#]+)"
)
_APPRISE_TOKEN_RE = re.compile(
    r"\b(?:slack|discord|msteams|tgram|pover|pushover|gchat|mattermost|rocket|zulip|matrix|ntfy|"
    r"gotify|pbul|join|ifttt|opsgenie|pagerduty|signal|twilio|sns|ses)s?://([^\s\"'<>]+)"
)
_KEY = r"[\"']?(?P<key>[^\W\d][\w.\-\u00c0-\uffff]{0,63})[\"']?"
_KV_EQUALS_RE = re.compile(
    r"(?<![\w.\-?&])" + _KEY + r"\s*=\s*(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s;,'\"}\])]+)"
)
_KV_QUOTED_COLON_RE = re.compile(
    r"[\"'](?P<key>[^\"'\n]{1,64})[\"']\s*:\s*(?P<value>\\\"(?:(?!\\\").)*\\\"|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^\s,{}\[\]\"'\\]+)"
)
_KV_LINE_COLON_RE = re.compile(
    r"(?m)^[ \t-]*(?P<key>[^\W\d][\w.\-]{0,63})[ \t]*:[ \t]+(?P<value>\S[^\n]*?)[ \t]*$"
)
_HEX_RE = re.compile(r"^[0-9a-fA-F]+$")
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9+/=_\-.~:]+$")
_HOST_NAME = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")
_RANDOM_SEGMENT_RE = re.compile(r"(?<![A-Za-z0-9+=])[A-Za-z0-9+]{20,}={0,2}(?![A-Za-z0-9+=])")
MIN_TOKEN_LENGTH = 16
MIN_TOKEN_ENTROPY = 3.5  # bits per character: random base64/hex is 4-6, words and hosts are lower
MIN_TEXT_TOKEN_ENTROPY = 3.8  # in free text: a 20+ character run of mixed case and digits
# A key naming a digest or an id: its long hex value is what a reader needs, not a secret.
DIGEST_WORDS = frozenset(
    [
        "checksum",
        "checksums",
        "sha",
        "sha256",
        "sha1",
        "md5",
        "digest",
        "hash",
        "etag",
        "commit",
        "revision",
        "rev",
        "trace",
        "uuid",
    ]
)


def shannon_entropy(value: str) -> float:
    """Bits per character of ``value``'s character distribution."""
    if not value:
        return 0.0
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _classes(value: str) -> int:
    return sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))


def looks_like_token(value: str) -> bool:
    """A whole value with a credential's look: a known shape, long random hex, or a 16+ character run
    of mixed-case letters and digits that is random (dates, paths and ids have no such run)."""
    value = value.strip()
    if _TOKEN_RE.fullmatch(value) or _JWT_RE.fullmatch(value) or _PEM_RE.search(value):
        return True
    if len(value) < MIN_TOKEN_LENGTH or not _TOKEN_CHARS.match(value) or "://" in value:
        return False
    if _HOST_NAME.match(value) or _UUID_RE.match(value):
        return False
    if len(value) >= 32 and _HEX_RE.match(value) is not None:
        return shannon_entropy(value) >= MIN_TOKEN_ENTROPY
    return any(
        len(run) >= MIN_TOKEN_LENGTH and _classes(run) >= 3 and shannon_entropy(run) >= MIN_TOKEN_ENTROPY
        for run in re.findall(r"[A-Za-z0-9+]+", value)
    )


def _random_word(word: str) -> bool:
    """A run of letters and digits in free text that is a random token (hex excepted: checksums, ids)."""
    if _HEX_RE.match(word) or _UUID_RE.match(word) or _classes(word) < 3:
        return False
    return shannon_entropy(word) >= MIN_TEXT_TOKEN_ENTROPY


def url_password(value: str) -> str | None:
    """The password of a URL such as ``postgresql://user:p#ss@host/db`` (as written), else None."""
    match = _USERINFO_RE.search(value)
    return match.group(2) if match else None


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _spans(text: str) -> list[tuple[int, int]]:
    """Where the secrets in ``text`` are: (start, end) of each, possibly overlapping."""
    spans: list[tuple[int, int]] = []
    for regex in (_TOKEN_RE, _JWT_RE, _PEM_RE):
        spans += [m.span() for m in regex.finditer(text)]
    spans += [m.span(1) for m in _AUTH_SCHEME_RE.finditer(text)]
    spans += [m.span(2) for m in _USERINFO_RE.finditer(text)]
    spans += [m.span(1) for m in _WEBHOOK_RE.finditer(text)]
    spans += [m.span(1) for m in _APPRISE_TOKEN_RE.finditer(text)]
    for m in _QUERY_PARAM_RE.finditer(text):
        if is_secret_key(m.group(1)) or m.group(1).lower() in ("x-amz-signature", "x-amz-credential", "code"):
            spans.append(m.span(2))
    for regex in (_KV_EQUALS_RE, _KV_QUOTED_COLON_RE, _KV_LINE_COLON_RE):
        for m in regex.finditer(text):
            if is_secret_key(m.group("key")) and _unquote(m.group("value")):
                start, end = m.span("value")
                if m.group("value")[0] in "'\"" and end - start >= 2:
                    start, end = start + 1, end - 1
                spans.append((start, end))
    spans += [m.span() for m in _RANDOM_SEGMENT_RE.finditer(text) if _random_word(m.group())]
    return spans


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def find_secrets(text: str) -> list[str]:
    """The secret substrings of ``text``, longest first (what to register with a log masker)."""
    found = {text[s:e] for s, e in _merged(_spans(text))}
    return sorted(found, key=lambda s: (-len(s), s))


def mask_text(text: str) -> str:
    """``text`` with every secret found in it replaced by ``***``."""
    if not text:
        return text
    out, last = [], 0
    for start, end in _merged(_spans(text)):
        out += [text[last:start], MASK]
        last = end
    out.append(text[last:])
    return "".join(out)


def _value_is_token(key: str, value: str) -> bool:
    if any(w in DIGEST_WORDS for w in key_words(key)):
        return bool(_TOKEN_RE.fullmatch(value.strip()) or _JWT_RE.fullmatch(value.strip()))
    return looks_like_token(value)


def is_secret(key: str, value: str) -> bool:
    """Whether the value of ``key`` must never be shown whole: by the key's name or by the value's look."""
    if not value:
        return False
    return is_secret_key(key) or _value_is_token(key, value) or bool(_spans(value))


def mask_value(key: str, value: str) -> str:
    """``***`` for a secret key or a value that is a token; else the value with secrets inside masked."""
    if not value:
        return value
    if is_secret_key(key) or _value_is_token(key, value):
        return MASK
    return mask_text(value)


def mask_structure(data: Any, key: str = "") -> Any:
    """A copy of JSON-like ``data`` with values under secret keys and secrets inside strings masked."""
    if isinstance(data, Mapping):
        return {
            k: (MASK if is_secret_key(str(k)) and v not in (None, "") else mask_structure(v, str(k)))
            for k, v in data.items()
        }
    if isinstance(data, list | tuple):
        return [mask_structure(v, key) for v in data]
    if isinstance(data, str):
        return mask_value(key, data)
    return data


def secret_values(values: Mapping[str, str]) -> list[str]:
    """Every string to register with a log masker: each value that is or holds a secret, whole, and
    the secrets inside it on their own (a URL's password is masked wherever it shows up)."""
    found: list[str] = []
    for key, value in values.items():
        if not is_secret(key, value):
            continue
        password = url_password(value)
        if is_secret_key(key) or _value_is_token(key, value):  # whole; parts of a token would leave a rest
            parts = [value] if password is None else [value, password]
        else:
            parts = [value, *find_secrets(value)]
        found += [s for s in parts if s not in found]
    return found


def secret_keys(values: Mapping[str, str]) -> list[str]:
    """The keys whose values are or hold secrets, sorted (key names are fit for logs; values are not)."""
    return sorted(k for k, v in values.items() if is_secret(k, v))


def masked(values: Mapping[str, str]) -> dict[str, str]:
    """A copy of a flat config with every value that is or holds a secret replaced by ``***``."""
    return {k: (MASK if is_secret(k, v) else v) for k, v in values.items()}
