"""A background thread that keeps a cache warm, so no person waits on the first request for it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

log = logging.getLogger(__name__)


class Refresher:
    """Calls ``refresh`` at start, then every half ``ttl`` (a cache read within its ``ttl`` never finds it
    expired while the refresher runs); a failing call is logged and tried again at the next tick.

    :param refresh: reads the source into its cache
    :param ttl: how long the cache keeps what was read
    """

    def __init__(
        self, refresh: Callable[[], object], ttl: timedelta, *, name: str = "baseline-guard-refresher"
    ):
        self._refresh = refresh
        self._period = ttl.total_seconds() / 2
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refreshed = 0

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._refresh()
                self.refreshed += 1
            except Exception as exc:  # the page shows "not available" meanwhile; the next tick retries
                log.warning("background refresh failed: %s: %s", type(exc).__name__, exc)
            self._stop.wait(self._period)
