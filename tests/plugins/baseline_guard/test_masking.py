"""The one masking rule (baseline_guard.masking) on a corpus of real-world secret formats and look-alikes."""

from __future__ import annotations

import pytest
from baseline_guard.masking import (
    MASK,
    find_secrets,
    is_secret,
    is_secret_key,
    mask_structure,
    mask_text,
    masked,
    secret_values,
)
from masking_corpus import NOT_SECRET, SECRET_KEYS, SECRET_TEXTS


@pytest.mark.parametrize(("what", "text", "secrets"), SECRET_TEXTS, ids=[c[0] for c in SECRET_TEXTS])
def test_every_secret_format_is_masked_and_the_rest_of_the_text_kept(what, text, secrets) -> None:
    out = mask_text(text)

    assert MASK in out, what
    for secret in secrets:
        assert secret not in out, f"{what}: {secret!r} left in {out!r}"
        found = find_secrets(text)  # what a log masker gets: the secret, or the random part of it
        assert any(secret in f or (len(f) >= 16 and f in secret) for f in found), (what, found)
    kept = out.replace(MASK, "")
    # a little more may go (a scheme word, quotes, a path after a bot token), never the whole text
    assert len(kept) >= len(text) - sum(len(s) for s in secrets) - 14, f"{what}: masked too much: {out!r}"


@pytest.mark.parametrize(("key", "value"), SECRET_KEYS, ids=[c[0] for c in SECRET_KEYS])
def test_a_secret_key_name_masks_its_value_in_every_language(key, value) -> None:
    assert is_secret_key(key) and is_secret(key, value)
    assert masked({key: value}) == {key: MASK}
    assert mask_text(f"{key}={value}") == f"{key}={MASK}"


@pytest.mark.parametrize(("key", "value"), NOT_SECRET, ids=[c[0] for c in NOT_SECRET])
def test_look_alikes_are_not_masked(key, value) -> None:
    assert not is_secret(key, value), (key, value)
    assert masked({key: value}) == {key: value}
    assert mask_text(value) == value and find_secrets(value) == []


def test_a_structure_keeps_its_shape_and_loses_its_secrets() -> None:
    body = {
        "user": "ci",
        "password": "hunter2",
        "nested": [{"apiKey": "k"}, {"note": "call postgresql://a:b@h/x"}],
        "count": 3,
        "password_policy_min_length": 12,
    }

    assert mask_structure(body) == {
        "user": "ci",
        "password": MASK,
        "nested": [{"apiKey": MASK}, {"note": f"call postgresql://a:{MASK}@h/x"}],
        "count": 3,
        "password_policy_min_length": 12,
    }


def test_secret_values_give_the_whole_value_and_the_secret_inside_it() -> None:
    values = secret_values(
        {"db_url": "postgresql://app:S3cr3t-pass@db/app", "db_password": "pw1", "size": "20"}
    )

    assert values == ["postgresql://app:S3cr3t-pass@db/app", "S3cr3t-pass", "pw1"]
