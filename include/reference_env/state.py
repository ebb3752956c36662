"""The sandbox's persisted state: one JSON file, replaced atomically (temp file + rename) on every change."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"
KEY_FILE = "sandbox.key"
SCHEMA_VERSION = 1


class StateError(RuntimeError):
    """The state file cannot be read; the message names the file and what is wrong."""


class StateFile:
    """Reads and writes ``<state_dir>/state.json``; also owns the id-signing key (``sandbox.key``, mode 600)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / STATE_FILE

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when the directory has none yet (a fresh sandbox)."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise StateError(
                f"{self.path}: not valid JSON ({exc}); move it away to start a fresh sandbox"
            ) from exc
        if not isinstance(data, dict) or data.get("schema") != SCHEMA_VERSION:
            raise StateError(f"{self.path}: expected a state object with schema {SCHEMA_VERSION}")
        return data

    def save(self, state: dict[str, Any]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"schema": SCHEMA_VERSION, **state}, indent=1, sort_keys=True, default=str)
        fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=self.state_dir)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def signing_key(self) -> str:
        """The sandbox key that signs quote and order ids; created once, kept across restarts."""
        path = self.state_dir / KEY_FILE
        if path.exists():
            return path.read_text().strip()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key
