"""Process helpers shared by the launcher and ``processes`` (Linux prctl; best effort elsewhere)."""

from __future__ import annotations

import contextlib
import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Child preexec: receive ``sig`` when the parent dies, so a killed parent leaves no orphan behind."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)
