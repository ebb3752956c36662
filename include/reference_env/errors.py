"""The sandbox's refusals: each carries the HTTP status the API answers with; the message is its detail."""

from __future__ import annotations


class SandboxError(Exception):
    """A refused request (400 unless a subclass says otherwise)."""

    status = 400


class NotFound(SandboxError):
    status = 404


class Forbidden(SandboxError):
    status = 403


class Conflict(SandboxError):
    status = 409
