"""The page app served standalone for the UI tests (a helper module: conftest modules share one name)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx

USERS = {"admin": "admin-pw", "viewer": "viewer-pw"}


@dataclass
class PageServer:
    base: str
    dsn: str
    log: Path

    def token(self, user: str = "admin") -> str:
        r = httpx.post(
            f"{self.base}/auth/token", json={"username": user, "password": USERS[user]}, timeout=30
        )
        r.raise_for_status()
        return r.json()["access_token"]
