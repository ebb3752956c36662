"""Apply to an environment the test configuration prepared with each production release."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from airflow.sdk.log import mask_secret

from baseline_guard.config_sync import masked, releases_in_production, secret_values
from baseline_guard.operators.base import EnvironmentApiOperator


class ConfigSyncOperator(EnvironmentApiOperator):
    """For each service of ``environment``, apply the test configuration of the version production runs.

    The test configuration is found through the production release record of that version
    (its ``test_config_ref``) and applied through the environment API when the environment runs
    another one. Production configuration values are never read or copied. Secret values
    (keys that look like passwords, tokens, keys) are registered with Airflow's masker before
    anything is logged, and never returned.

    :param environment: environment to configure; never ``production`` (templated)
    :param as_of: ISO timestamp; releases after it are ignored (templated; default: now)
    """

    template_fields: Sequence[str] = ("environment", "as_of")
    ui_color = "#e8daef"

    def __init__(self, *, environment: str = "baseline", as_of: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.environment = environment
        self.as_of = as_of

    def execute(self, context: Any) -> dict[str, list[dict[str, Any]]]:
        self.bind_trace_id(context)
        self.env_api.require_writable(self.environment)
        as_of = datetime.fromisoformat(self.as_of) if self.as_of else _now()
        wanted = releases_in_production(self.env_api.list_releases(until=as_of), as_of)
        applied, without_test_config = [], []
        for svc in self.env_api.list_services(self.environment):
            release = wanted.get(svc.name)
            if release is None:
                continue
            if not release.test_config_ref:
                self.log.warning("release has no test config", service=svc.name, version=release.version)
                without_test_config.append({"service": svc.name, "version": release.version})
                continue
            current = self.env_api.get_applied_test_config(self.environment, svc.name)
            if current.ref == release.test_config_ref:
                continue
            config = self.env_api.get_test_config(release.test_config_ref)
            for value in secret_values(config.values):
                mask_secret(value)
            self.env_api.apply_test_config(self.environment, svc.name, config.ref, config.values)
            changed_keys = sorted(k for k in config.values.keys() | current.values.keys()
                                  if config.values.get(k) != current.values.get(k))  # fmt: skip
            self.log.info(
                "applied test config", service=svc.name, ref=config.ref, previous=current.ref,
                values=masked(config.values),
            )  # fmt: skip
            applied.append(
                {
                    "service": svc.name,
                    "ref": config.ref,
                    "previous_ref": current.ref,
                    "changed_keys": changed_keys,
                }
            )
        return {"applied": applied, "without_test_config": without_test_config}


def _now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)
