"""Nothing outlives its module: a check that fails the run when processes a module started are still
alive once its last test has been torn down (they are killed then, and named in the error).

Processes that a session- or package-scoped fixture started (and their descendants: a reference
environment restarts its instances) may outlive a module. The worker is made a child subreaper, so
servers that detach (``pg_ctl start``) stay its descendants and are counted too. Loaded as a plugin
(``pytest_plugins`` in tests/conftest.py), not as conftest hooks: a session fixture's setup hook is
called on the session node, which sees only plugins and the conftests above the rootdir.
"""

from __future__ import annotations

import contextlib
import ctypes
import time
from pathlib import Path

import psutil
import pytest

_SHARED_SCOPES = frozenset({"session", "package"})
_PR_SET_CHILD_SUBREAPER = 36


class _ModuleWatch:
    """The worker's descendants when a module's first test started, and the shared fixtures' ones."""

    path: Path | None = None
    before: frozenset[int] = frozenset()
    shared_roots: set[int] = set()


def pytest_configure(config: pytest.Config) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _descendants() -> dict[int, psutil.Process]:
    alive: dict[int, psutil.Process] = {}
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive[proc.pid] = proc
    return alive


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest) -> object:
    if fixturedef.scope not in _SHARED_SCOPES:
        return (yield)
    before = set(_descendants())
    try:
        return (yield)
    finally:
        _ModuleWatch.shared_roots.update(set(_descendants()) - before)


def _leaked() -> list[psutil.Process]:
    alive = _descendants()
    shared: set[int] = set()
    for pid in _ModuleWatch.shared_roots & alive.keys():
        shared.add(pid)
        with contextlib.suppress(psutil.Error):
            shared.update(p.pid for p in alive[pid].children(recursive=True))
    return [p for pid, p in alive.items() if pid not in _ModuleWatch.before and pid not in shared]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> object:
    if _ModuleWatch.path != item.path:
        _ModuleWatch.path = item.path
        _ModuleWatch.before = frozenset(_descendants())
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    result = yield
    if nextitem is not None and nextitem.path == item.path:
        return result
    _ModuleWatch.path = None
    deadline = time.monotonic() + 10  # a stopped server's children may take a moment to exit
    while (leaked := _leaked()) and time.monotonic() < deadline:
        time.sleep(0.2)
    if leaked:
        described = []
        for proc in leaked:
            with contextlib.suppress(psutil.Error):
                described.append(f"{proc.pid}: {' '.join(proc.cmdline())[:160]}")
                proc.kill()
        pytest.fail(
            f"{len(leaked)} process(es) started by {item.path.name} outlived it (killed now): "
            + "; ".join(described),
            pytrace=False,
        )
    return result
