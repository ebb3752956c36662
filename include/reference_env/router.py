"""Soft routing for the gateway: a request goes to the project environment its route key names, if that
environment runs the service, else to the baseline; round robin over the in-rotation instances."""

from __future__ import annotations

from baseline_guard.environment_contract import EnvironmentKind

from reference_env.runtime import InstanceRuntime
from reference_env.store import Store
from reference_env.topology import BASELINE


class Router:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._round_robin: dict[tuple[str, str], int] = {}

    def pick_instance(self, service: str, route_key: str | None) -> InstanceRuntime | None:
        """The next in-rotation instance for a request: the project environment's if the key names one
        that runs the service, else the baseline's (soft routing); round robin within the chosen group."""
        environments = self.store.environments
        if route_key:
            project = environments.get(route_key)
            if (
                project is not None
                and project.kind is EnvironmentKind.PROJECT
                and service in project.services
            ):
                chosen = self._next_routable(project.name, project.services[service])
                if chosen is not None:
                    return chosen
        baseline = environments.get(BASELINE)
        if baseline is None or service not in baseline.services:
            return None
        return self._next_routable(BASELINE, baseline.services[service])

    def _next_routable(self, env: str, group: list[InstanceRuntime]) -> InstanceRuntime | None:
        candidates = [i for i in group if i.routable()]
        if not candidates:
            return None
        key = (env, group[0].service)
        turn = self._round_robin.get(key, 0)
        self._round_robin[key] = turn + 1
        return candidates[turn % len(candidates)]
