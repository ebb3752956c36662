"""Child processes of the local stack: each in its own process group, recorded so a later start can
clean up after a stack that was killed with ``kill -9``."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

_PR_SET_PDEATHSIG = 1


def _own_group_dying_with_parent() -> None:
    """Child preexec: SIGTERM when the parent dies (Linux), so a killed ``up`` leaves fewer orphans."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class ManagedProcess:
    """One child process in its own session (Ctrl-C in the terminal does not reach it: ``up`` stops
    the parts in order), with stdout and stderr in ``log_file``."""

    name: str
    argv: list[str]
    env: Mapping[str, str]
    log_file: Path
    die_with_parent: bool = True
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> ManagedProcess:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(self.env),
                start_new_session=True,
                preexec_fn=_own_group_dying_with_parent if self.die_with_parent else None,
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode if self.popen else None

    def is_running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the whole process group, wait for the leader; SIGKILL the group if it lingers."""
        if self.popen is None:
            return
        pgid = self.popen.pid  # session leader: its pid is the group id
        members = processes_in_group(pgid)
        _signal_group(pgid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(pgid, signal.SIGKILL)
            self.popen.wait(timeout=10)
        _wait_gone(members, timeout=timeout)
        _signal_group(pgid, signal.SIGKILL)  # anything left in the group after the leader exited

    def kill(self, timeout: float = 30.0) -> None:
        """SIGKILL the whole process group (a crash, as far as the process can tell) and reap it."""
        if self.popen is None:
            return
        _signal_group(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=timeout)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def processes_in_group(pgid: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == pgid:
                found.append(proc)
    return found


def _wait_gone(procs: Iterable[psutil.Process], timeout: float) -> None:
    _, alive = psutil.wait_procs(list(procs), timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)


# --- the record of what runs, for cleaning up after a kill -9 ------------------------------------


def _describe(proc: psutil.Process) -> dict[str, object] | None:
    try:
        return {"pid": proc.pid, "pgid": os.getpgid(proc.pid), "create_time": proc.create_time()}
    except (psutil.Error, OSError):
        return None


def record_tree(path: Path, root_pid: int) -> None:
    """Write every process under ``root_pid`` (itself included) to ``path``."""
    root = psutil.Process(root_pid)
    entries = [d for p in [root, *root.children(recursive=True)] if (d := _describe(p))]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries))
    tmp.replace(path)


def kill_recorded(path: Path, timeout: float = 10.0) -> int:
    """Kill what a previous stack left behind (same pid and start time, or same process group
    started after it); return how many processes were killed. Removes the record."""
    if not path.exists():
        return 0
    try:
        entries = json.loads(path.read_text())
    except ValueError:
        entries = []
    victims: dict[int, psutil.Process] = {}
    groups = {int(e["pgid"]): float(e["create_time"]) for e in entries if e["pgid"] != os.getpgid(0)}
    for e in entries:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(int(e["pid"]))
            if abs(proc.create_time() - float(e["create_time"])) < 0.5 and proc.pid != os.getpid():
                victims[proc.pid] = proc
    for pgid, since in groups.items():
        for proc in processes_in_group(pgid):
            with contextlib.suppress(psutil.Error):
                if proc.create_time() >= since - 0.5 and proc.pid != os.getpid():
                    victims[proc.pid] = proc
    for proc in victims.values():
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _wait_gone(victims.values(), timeout=timeout)
    path.unlink(missing_ok=True)
    return len(victims)


@dataclass(frozen=True)
class TreeMemory:
    rss_bytes: int  # what `ps` shows, summed: counts shared pages once per process
    pss_bytes: int  # proportional set size, summed: shared pages split between their users

    def describe(self) -> str:
        return f"RSS {self.rss_bytes / 2**20:.0f} MB (PSS {self.pss_bytes / 2**20:.0f} MB)"


def tree_memory(pids: Iterable[int]) -> TreeMemory:
    """Memory of the given processes and all their descendants (each counted once)."""
    seen: dict[int, tuple[int, int]] = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    rss = proc.memory_info().rss
                    try:
                        pss = getattr(proc.memory_full_info(), "pss", rss)
                    except psutil.AccessDenied:
                        pss = rss
                    seen[proc.pid] = (rss, pss)
    return TreeMemory(sum(r for r, _ in seen.values()), sum(p for _, p in seen.values()))


# --- ports -------------------------------------------------------------------------------------


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_for(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    interval: float = 0.2,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Poll ``condition()`` until true; raise ``TimeoutError`` naming ``what`` (or ``RuntimeError`` when
    ``alive()`` turns false first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if alive is not None and not alive():
            raise RuntimeError(f"{what}: it stopped before it was ready")
        time.sleep(interval)
    raise TimeoutError(f"{what}: not ready within {timeout:.0f}s")
