"""What reaches a chat channel is masked: messages through the real Apprise to the reference server's sink."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from backup_store_fixtures import admin_messages
from baseline_guard.notifiers.channels import failure_reason, send, send_to_url

DSN_ERROR = (
    'connection to server failed: FATAL: password authentication failed for user "app" '
    "(dsn postgresql://app:p#ss-0c9d@db.prod.example/app, token ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8)"
)
SECRETS = ("p#ss-0c9d", "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8")


def _received(env_api: Any, channel: str) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"http://127.0.0.1:{env_api.api_port}/v1/notifications",
        params={"channel": channel},
        headers={"Authorization": f"Bearer {env_api.token}"},
    )
    answer.raise_for_status()
    return answer.json()


def test_an_exception_s_secrets_never_reach_an_owners_channel(env_api: Any) -> None:
    channel = f"owners-{secrets.token_hex(3)}"
    reason = failure_reason({"exception": RuntimeError(DSN_ERROR)})

    send_to_url(
        f"json://127.0.0.1:{env_api.api_port}/v1/notifications/{channel}",
        "check of proj-a failed",
        f"why: {reason}\nraw: {DSN_ERROR}",
        failure=True,
    )

    (message,) = _received(env_api, channel)
    text = str(message)
    assert not [s for s in SECRETS if s in text], text
    assert "password authentication failed" in text and "postgresql://app:***@db.prod.example/app" in text


def test_the_admins_channel_gets_the_message_masked(env_api: Any) -> None:
    marker = secrets.token_hex(4)

    send(f"restore failed {marker}", f"pg_restore: {DSN_ERROR}", failure=True)

    (message,) = [m for m in admin_messages(env_api) if marker in str(m)]
    assert not [s for s in SECRETS if s in str(message)], message
