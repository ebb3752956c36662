"""The Celery mode's Redis, supervised: a real ``redis-server`` started the way the stack starts it,
killed, held down on request, started again; what was queued in it survives each time."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import local_stack.celery_mode as celery_mode
import psutil
import pytest
import redis
from local_stack.celery_mode import (
    CeleryAirflow,
    redis_answers,
    redis_argv,
    request_redis_stop,
    withdraw_redis_stop_request,
)
from local_stack.config import Ports, StackConfig, StackSecrets
from local_stack.processes import ManagedProcess
from local_stack_helpers import free_port_env


@pytest.fixture
def celery(state_dir: Path) -> Iterator[tuple[CeleryAirflow, list[str]]]:
    config = StackConfig(
        state_dir=state_dir, ports=Ports.from_env(free_port_env()), secrets=StackSecrets.generate()
    )
    said: list[str] = []
    mode = CeleryAirflow(config, said.append)
    mode.start_redis()
    yield mode, said
    mode.stop()


def _client(mode: CeleryAirflow) -> redis.Redis:
    return redis.Redis(host=mode.config.host, port=mode.config.ports.redis_port, socket_timeout=5)


def _supervise_until(mode: CeleryAirflow, condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the supervisor did not get there in time"
        mode.supervise_redis()
        time.sleep(0.2)


def _up(mode: CeleryAirflow) -> bool:
    return redis_answers(mode.config.ports.redis_port, mode.config.host)


def _redis_process(mode: CeleryAirflow) -> ManagedProcess:
    assert mode.redis is not None and mode.redis.pid is not None
    return mode.redis


def test_a_redis_that_dies_is_started_again_the_same_way_with_its_queued_messages(
    celery: tuple[CeleryAirflow, list[str]],
) -> None:
    mode, said = celery
    _client(mode).rpush("default", "task-1", "task-2")
    _client(mode).hset("unacked", "tag-1", "running-task")
    first = _redis_process(mode)
    os.killpg(first.pid, signal.SIGKILL)  # a crash: no chance to write anything more

    _supervise_until(mode, lambda: _redis_process(mode) is not first and _up(mode))
    again = _redis_process(mode)
    assert again.argv == first.argv == redis_argv(mode.config)
    assert (
        psutil.Process(again.pid)
        .cmdline()[0]
        .endswith(f"redis-server {mode.config.host}:{mode.config.ports.redis_port}")
    )
    assert _client(mode).lrange("default", 0, -1) == [b"task-1", b"task-2"]
    assert _client(mode).hgetall("unacked") == {b"tag-1": b"running-task"}
    assert any("Redis exited (code -9); starting it again in 0 s" in line for line in said)
    assert mode.problem() is None


def test_stop_redis_holds_it_down_until_start(celery: tuple[CeleryAirflow, list[str]]) -> None:
    mode, said = celery
    first = _redis_process(mode)
    _client(mode).rpush("default", "queued-before-the-kill")
    request_redis_stop(mode.config, "kill")
    _supervise_until(mode, lambda: not first.is_running())
    assert first.popen is not None and first.popen.returncode == -signal.SIGKILL
    held_until = time.monotonic() + 3
    while time.monotonic() < held_until:  # held: not restarted
        mode.supervise_redis()
        assert not _up(mode) and _redis_process(mode) is first
        time.sleep(0.2)
    assert mode.problem() is None  # held on purpose: the stack carries on

    withdraw_redis_stop_request(mode.config)
    _supervise_until(mode, lambda: _up(mode))
    assert _redis_process(mode) is not first
    assert _client(mode).lrange("default", 0, -1) == [b"queued-before-the-kill"]
    assert [line for line in said if "Redis" in line][:2] == [
        "  Redis stopped on request (SIGKILL, python -m local_stack stop redis); "
        "Celery work waits until python -m local_stack start redis",
        "  Redis starting again on request (python -m local_stack start redis) ...",
    ]


def test_a_redis_that_cannot_start_again_stops_the_stack(
    celery: tuple[CeleryAirflow, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    mode, said = celery
    monkeypatch.setattr(celery_mode, "REDIS_RESTART_DELAYS_S", (0.0, 0.0))
    os.killpg(_redis_process(mode).pid, signal.SIGKILL)
    _redis_process(mode).popen.wait(timeout=30)
    with socket.create_server((mode.config.host, mode.config.ports.redis_port)):  # something took its port
        _supervise_until(mode, lambda: mode.problem() is not None)
    assert mode.problem() == f"Redis exited 3 times in a row; see {mode.config.log_dir / 'redis.log'}"
    assert sum("Redis did not start again" in line for line in said) == 2


def test_stop_redis_without_a_running_celery_stack_says_so(state_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "local_stack", "--state-dir", str(state_dir), "stop", "redis", "--kill"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **free_port_env()},
    )
    assert done.returncode == 1
    assert f"error: no local stack is running from {state_dir.resolve()}" in done.stderr
    assert not (state_dir / "redis-stop-requested").exists()  # nothing left behind for a later stack
