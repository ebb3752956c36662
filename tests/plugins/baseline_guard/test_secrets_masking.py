"""Secrets found by key name and by value: passwords, keys, URLs with passwords, tokens under innocent keys."""

from __future__ import annotations

from baseline_guard.configsync.secrets import is_secret, looks_like_token, masked, secret_values, url_password

SECRETS = {
    "db_pwd": "hunter22-prod",
    "encryption_key": "k3y-material-0001",
    "db_url": "postgresql://app:S3cr3t-pass@db.prod.example:5432/app",
    "fx_source": "ZmF0LXRva2VuLTk4NzY1NDMyMTA-abcXYZ",  # an API token under an innocent name
    "upstream": "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjaSJ9.c2lnbmF0dXJlLXZhbHVl",
}
PLAIN = {
    "search_page_size": "20",
    "search_cache": "off",
    "fx_url": "https://fx.prod.example/v2/rates",
    "booking_mail": "smtp3.prod.example",
    "greeting": "Welcome to the hotel booking test environment",
    "build": "2026-11-30T13:00:00Z",
    "feature_flags": "search_v2,quote_cache,order_async",
}


def test_secrets_by_key_name_and_by_value() -> None:
    assert {k for k, v in {**SECRETS, **PLAIN}.items() if is_secret(k, v)} == set(SECRETS)


def test_url_password_is_masked_on_its_own_too() -> None:
    assert url_password(SECRETS["db_url"]) == "S3cr3t-pass"
    assert url_password("https://fx.prod.example/v2") is None
    values = secret_values({"db_url": SECRETS["db_url"]})
    assert values == [SECRETS["db_url"], "S3cr3t-pass"]


def test_masked_copy_hides_every_secret_value() -> None:
    copy = masked({**SECRETS, **PLAIN})
    assert all(copy[k] == "***" for k in SECRETS)
    assert all(copy[k] == v for k, v in PLAIN.items())


def test_tokens_need_length_and_entropy() -> None:
    assert looks_like_token("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
    assert not looks_like_token("aaaaaaaaaaaaaaaaaaaaaaaa")
    assert not looks_like_token("short1A")
