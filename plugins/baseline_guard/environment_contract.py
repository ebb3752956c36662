"""The environment API contract, version 1: the shapes both sides of the HTTP API agree on.

The reference environment API (``include/reference_env``) serves these models and publishes
them as OpenAPI; :class:`~baseline_guard.hooks.environment.EnvironmentHook` parses responses
into them. A company adapts its own environment manager to this contract (or subclasses the
hook). Plain pydantic, no Airflow import.

Paths (all under ``/v1``, every call with ``Authorization: Bearer <token>`` and ``X-Trace-Id``):

=======  ===========================================================  ===========================
method   path                                                         body -> answer
=======  ===========================================================  ===========================
GET      /environments                                                -> list[Environment]
POST     /environments                                                ProjectEnvironmentCreate -> Environment (201)
GET      /environments/{env}                                          -> Environment
DELETE   /environments/{env}                                          (project only) -> 204
GET      /environments/{env}/services                                 -> list[Service]
GET      /environments/{env}/services/{svc}                           -> Service
POST     /environments/{env}/services/{svc}/instances/{i}/deploy      DeployRequest -> Operation (202)
POST     /environments/{env}/services/{svc}/instances/{i}/restart     -> Operation (202)
PUT      /environments/{env}/services/{svc}/instances/{i}/rotation    RotationRequest -> Instance
GET      /environments/{env}/services/{svc}/instances/{i}/health      -> HealthReport (live probe)
GET      /operations/{op_id}                                          -> Operation
GET      /releases?service=&until=                                    -> list[Release] (production)
POST     /releases                                                    ReleaseCreate -> Release (201)
GET      /test-configs/{ref}                                          -> TestConfig
GET      /environments/{env}/services/{svc}/test-config               -> AppliedTestConfig
PUT      /environments/{env}/services/{svc}/test-config               TestConfigApply -> AppliedTestConfig
GET      /environments/production/services/{svc}/config-digest       -> ConfigDigest
GET      /environments/{env}/databases                                -> list[Database]
GET      /catalog                                                     -> list[CatalogVersion]
POST     /catalog                                                     CatalogVersion -> CatalogVersion (201)
=======  ===========================================================  ===========================

Errors are JSON ``{"detail": "..."}`` with 400/401/403/404/409/422. Every write to an
environment of kind ``production`` answers 403.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

API_VERSION = "v1"
ROUTING_KEY_HEADER = "X-Route-Key"
TRACE_ID_HEADER = "X-Trace-Id"

NAME_PATTERN = r"^[a-z][a-z0-9-]{1,39}$"
VERSION_PATTERN = r"^[0-9]+\.[0-9]+\.[0-9]+([-+][A-Za-z0-9.-]+)?$"


class EnvironmentKind(StrEnum):
    PRODUCTION = "production"
    BASELINE = "baseline"
    PROJECT = "project"


class InstanceState(StrEnum):
    """Process state of one instance, as the environment manager sees it."""

    RUNNING = "running"
    DEPLOYING = "deploying"
    STOPPED = "stopped"
    FAILED = "failed"


class Health(StrEnum):
    HEALTHY = "healthy"
    STARTING = "starting"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


class OperationState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (OperationState.SUCCEEDED, OperationState.FAILED)


class Behaviour(StrEnum):
    """How a version in the sandbox release catalog behaves once deployed."""

    HEALTHY = "healthy"
    FAILS_HEALTH = "fails_health"
    WRONG_ANSWER = "wrong_answer"
    SLOW_START = "slow_start"
    SLOW_RESPONSE = "slow_response"


class Environment(BaseModel):
    name: str
    kind: EnvironmentKind
    routing_key: str | None = Field(
        default=None, description="Value of the X-Route-Key header that routes to this environment."
    )
    services: list[str] = Field(default_factory=list, description="Services this environment runs itself.")
    owners_notify_url: str | None = Field(
        default=None,
        description="Apprise URL of the environment owners' channel (chat, mail, webhook): where its "
        "failed checks and stale restore proofs are sent. None: the Baseline Guard admins are told.",
    )


class ProjectEnvironmentCreate(BaseModel):
    name: str = Field(pattern=NAME_PATTERN)
    services: dict[str, str] = Field(description="service name -> version to run in the project environment")
    instances: int = Field(default=1, ge=1, le=2)
    owners_notify_url: str | None = Field(
        default=None, max_length=2000, description="Apprise URL of the owners' channel (see Environment)."
    )


class Instance(BaseModel):
    index: int
    version: str
    previous_version: str | None = None
    state: InstanceState
    health: Health
    in_rotation: bool
    in_flight: int = Field(default=0, description="Requests the gateway has in flight to this instance.")
    url: str | None = Field(
        default=None, description="Direct address of the instance (None when not running)."
    )


class Service(BaseModel):
    name: str
    environment: str
    module: str = Field(description="Business module the service belongs to (used in check reports).")
    instances: list[Instance]


class DeployRequest(BaseModel):
    version: str = Field(pattern=VERSION_PATTERN)


class RotationRequest(BaseModel):
    in_rotation: bool


class HealthReport(BaseModel):
    health: Health
    version: str | None = None
    detail: str = ""


class Operation(BaseModel):
    id: str
    kind: str = Field(description="deploy | restart")
    environment: str
    service: str
    instance: int
    target_version: str | None = None
    state: OperationState
    message: str = ""
    started_at: datetime
    finished_at: datetime | None = None


class Release(BaseModel):
    service: str
    version: str
    released_at: datetime
    test_config_ref: str | None = None


class ReleaseCreate(BaseModel):
    service: str
    version: str = Field(pattern=VERSION_PATTERN)
    released_at: datetime | None = None
    test_config: dict[str, str] | None = Field(
        default=None, description="Test configuration prepared with this release (stored, referenced)."
    )
    production_config: dict[str, str] | None = Field(
        default=None,
        description="New production configuration values (sandbox only; only a digest is readable).",
    )


class TestConfig(BaseModel):
    __test__ = False  # not a pytest class

    ref: str
    service: str
    values: dict[str, str]


class TestConfigApply(BaseModel):
    ref: str
    values: dict[str, str]


class AppliedTestConfig(BaseModel):
    environment: str
    service: str
    ref: str | None
    values: dict[str, str]
    applied_at: datetime | None = None


class ConfigDigest(BaseModel):
    service: str
    digest: str
    changed_at: datetime


class Database(BaseModel):
    environment: str
    service: str
    name: str = Field(description="Database name on its server.")
    conn_id: str = Field(description="Airflow connection id that reaches this database.")


class CatalogVersion(BaseModel):
    service: str
    version: str = Field(pattern=VERSION_PATTERN)
    behaviour: Behaviour = Behaviour.HEALTHY
    start_delay_s: float = Field(default=0.0, ge=0, le=120)
    latency_ms: int = Field(default=0, ge=0, le=60_000)
