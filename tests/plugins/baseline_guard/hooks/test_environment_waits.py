"""EnvironmentHook's waits against a real sandbox: operations, health (async, as a trigger awaits it),
drain, and the smoke check."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from baseline_guard.errors import SmokeCheckFailed
from baseline_guard.hooks.environment import EnvironmentHook
from local_stack.connections import env_api_connections
from reference_env.launcher import ReferenceEnvironment


@pytest.fixture
def hook(
    make_env_api: Callable[[], ReferenceEnvironment], monkeypatch: pytest.MonkeyPatch
) -> EnvironmentHook:
    env = make_env_api()
    for key, value in env_api_connections(env.api_port, env.token, conn_id="waits_env_api").items():
        monkeypatch.setenv(key, value)
    return EnvironmentHook("waits_env_api")


def test_a_slow_start_is_waited_for_and_a_short_wait_hands_back_the_last_report(
    hook: EnvironmentHook,
) -> None:
    hook.set_rotation("baseline", "quote", 1, False)
    op = hook.deploy("baseline", "quote", 1, "1.9.4-slowstart")

    done = hook.wait_for_operation(op.id, timeout_s=60, poll_interval_s=0.1)
    assert done.state == "succeeded"

    async def health(timeout_s: float) -> str:
        try:
            report = await hook.await_healthy(
                "baseline", "quote", 1, version="1.9.4-slowstart", timeout_s=timeout_s, poll_interval_s=0.1
            )
        finally:
            await hook.aclose()
        return report.health

    assert asyncio.run(health(0.3)) == "starting"  # time ran out: the last report, no exception
    assert asyncio.run(health(30)) == "healthy"


def test_drain_and_smoke_check(hook: EnvironmentHook) -> None:
    inst = hook.wait_until_drained("baseline", "order", 2, timeout_s=5, poll_interval_s=0.1)
    assert inst.in_flight == 0

    hook.smoke_check(inst.url, ["/health"])
    with pytest.raises(SmokeCheckFailed, match="GET /no-such-page answered 404"):
        hook.smoke_check(inst.url, ["/no-such-page"])
    with pytest.raises(SmokeCheckFailed, match="no address"):
        hook.smoke_check(None, ["/health"])
