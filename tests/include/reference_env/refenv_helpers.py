"""Helpers for the reference environment tests (real HTTP against a running reference environment)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx


def child_pids(parent: int) -> set[int]:
    """Pids whose parent is ``parent`` (read from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_operation(api: httpx.Client, op: dict[str, Any], timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = api.get(f"/v1/operations/{op['id']}").raise_for_status().json()
        if current["state"] in ("succeeded", "failed"):
            return current
        time.sleep(0.05)
    raise AssertionError(f"operation {op['id']} did not finish within {timeout}s")


def instance(api: httpx.Client, env: str, service: str, index: int) -> dict[str, Any]:
    svc = api.get(f"/v1/environments/{env}/services/{service}").raise_for_status().json()
    return next(i for i in svc["instances"] if i["index"] == index)


def deploy(api: httpx.Client, env: str, service: str, index: int, version: str) -> dict[str, Any]:
    response = api.post(
        f"/v1/environments/{env}/services/{service}/instances/{index}/deploy", json={"version": version}
    )
    assert response.status_code == 202, response.text
    return wait_operation(api, response.json())


def set_rotation(api: httpx.Client, env: str, service: str, index: int, in_rotation: bool) -> httpx.Response:
    return api.put(
        f"/v1/environments/{env}/services/{service}/instances/{index}/rotation",
        json={"in_rotation": in_rotation},
    )


def run_chain(gateway: httpx.Client, headers: dict[str, str] | None = None) -> dict[str, httpx.Response]:
    """search -> detail -> quote -> order -> read the order back; every step must answer 2xx."""
    headers = headers or {}
    steps: dict[str, httpx.Response] = {}
    steps["search"] = gateway.get("/hotel-search/hotels", params={"city": "Paris"}, headers=headers)
    hotel_id = steps["search"].raise_for_status().json()["hotels"][0]["id"]
    steps["detail"] = gateway.get(f"/hotel-detail/hotels/{hotel_id}", headers=headers).raise_for_status()
    body = {"hotel_id": hotel_id, "room_type": "double", "nights": 2, "guests": 2}
    steps["quote"] = gateway.post("/quote/quotes", json=body, headers=headers).raise_for_status()
    order = {"quote_id": steps["quote"].json()["quote_id"], "guest_name": "Ada", "email": "ada@example.com"}
    steps["order"] = gateway.post("/order/orders", json=order, headers=headers).raise_for_status()
    steps["read_order"] = gateway.get(f"/order/orders/{steps['order'].json()['order_id']}", headers=headers)
    steps["read_order"].raise_for_status()
    return steps


def stats(url: str) -> int:
    """Business requests an instance has served (its own ``/stats``, asked directly)."""
    return httpx.get(f"{url}/stats", timeout=5).raise_for_status().json()["requests"]
