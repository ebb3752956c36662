"""The page and its JSON answer only to a signed-in Airflow user (Airflow's own auth manager and JWT)."""

from __future__ import annotations

import httpx
import jwt
from ui_page_server import PageServer

PATHS = ("/baseline-guard/", "/baseline-guard/api/health")


def test_anonymous_requests_are_refused(page_server: PageServer) -> None:
    for path in PATHS:
        r = httpx.get(page_server.base + path, timeout=30)
        assert r.status_code == 401, path
        assert "Baseline health" not in r.text and "baseline" not in r.text


def test_a_forged_token_is_refused(page_server: PageServer) -> None:
    real = jwt.decode(page_server.token(), options={"verify_signature": False})
    forged = jwt.encode(real, "not-the-secret-" * 5, algorithm="HS512")
    for path in PATHS:
        for headers, cookies in (({"Authorization": f"Bearer {forged}"}, {}), ({}, {"_token": forged})):
            r = httpx.get(page_server.base + path, headers=headers, cookies=cookies, timeout=30)
            assert r.status_code == 403, (path, r.text)


def test_signed_in_users_get_the_json(page_server: PageServer) -> None:
    for user in ("admin", "viewer"):
        r = httpx.get(
            f"{page_server.base}/baseline-guard/api/health",
            headers={"Authorization": f"Bearer {page_server.token(user)}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
    envs = {e["name"]: e for e in r.json()["environments"]}
    assert envs["baseline"]["state"] == "failing" and "pricing" in envs["baseline"]["failing_modules"]
    pricing = next(m for m in envs["baseline"]["modules"] if m["name"] == "pricing")
    assert (pricing["state"], pricing["interface"], pricing["version"]) == (
        "failing",
        "POST /quotes",
        "1.9.2-wrong",
    )
    assert envs["proj-a"]["state"] == "passing" and envs["proj-a"]["routing_key"] == "proj-a"
    [incident] = [i for i in envs["baseline"]["open_incidents"] if i["module"] == "pricing"]
    assert incident["failed_checks"] == 1
    # the 2-hour pricing outage two days ago: 7-day availability below the 99% target
    week = envs["baseline"]["availability"]["7d"]
    assert week["meets_target"] is False and week["incidents"] == 2


def test_answers_are_never_stored_by_a_cache(page_server: PageServer) -> None:
    """Issue 20: the page and its JSON hold every environment, held approvals and presigned report links."""
    for path in PATHS:
        signed_in = httpx.get(
            page_server.base + path,
            headers={"Authorization": f"Bearer {page_server.token()}"},
            timeout=30,
        )
        anonymous = httpx.get(page_server.base + path, timeout=30)
        for answer in (signed_in, anonymous):
            directives = {d.strip() for d in answer.headers.get("cache-control", "").split(",")}
            assert {"no-store", "private"} <= directives, (path, answer.status_code, answer.headers)
