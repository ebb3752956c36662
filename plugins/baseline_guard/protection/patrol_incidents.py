"""Patrol incidents: one message per incident, whatever the number of patrol runs. No Airflow.

An incident is an instance the patrol could not bring back (down after its restart, or not
restarted within the run's time budget). Its state survives between runs (``since``,
``last_told``) so the admins hear "down" once when it starts, "still down" at most every
``STILL_DOWN_EVERY``, and "recovered" when a later run finds it healthy. An instance healed within
the run that found it down is no incident. Incidents of an environment that no longer exists
are dropped without a message: a deleted environment is not an outage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

STILL_DOWN_EVERY = timedelta(hours=1)


def instance_key(environment: str, service: str, index: int) -> str:
    return f"{environment}/{service}#{index}"


def environment_of(key: str) -> str:
    return key.split("/", 1)[0]


@dataclass
class Transitions:
    """What to tell after one patrol run: instance keys with their reasons, per kind of message."""

    down: dict[str, str] = field(default_factory=dict)
    still_down: dict[str, str] = field(default_factory=dict)
    recovered: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # their environment vanished

    def any(self) -> bool:
        return bool(self.down or self.still_down or self.recovered)


def next_incidents(
    previous: Mapping[str, Mapping[str, Any]],
    down_now: Mapping[str, str],
    *,
    checked: Iterable[str],
    vanished: Iterable[str],
    now: datetime,
) -> tuple[dict[str, dict[str, Any]], Transitions]:
    """The incidents after this run and what to tell about them.

    :param previous: instance key -> ``{"since", "last_told", "reason"}`` from the last run
    :param down_now: instance key -> why it is still down after this run
    :param checked: environments this run looked at in full (an incident there not down now recovered)
    :param vanished: environments that no longer exist (their incidents are dropped)
    :param now: the time of this run
    """
    checked, vanished = set(checked), set(vanished)
    incidents: dict[str, dict[str, Any]] = {}
    told = Transitions()
    for key, reason in sorted(down_now.items()):
        before = previous.get(key)
        if before is None:
            incidents[key] = {"since": now.isoformat(), "last_told": now.isoformat(), "reason": reason}
            told.down[key] = reason
        elif now - datetime.fromisoformat(before["last_told"]) >= STILL_DOWN_EVERY:
            incidents[key] = {**before, "last_told": now.isoformat(), "reason": reason}
            told.still_down[key] = f"{reason} (down since {before['since']})"
        else:
            incidents[key] = {**before, "reason": reason}
    for key, before in sorted(previous.items()):
        if key in down_now:
            continue
        env = environment_of(key)
        if env in vanished:
            told.dropped.append(key)
        elif env in checked:
            told.recovered.append(key)
        else:
            incidents[key] = dict(before)  # not looked at this run (time budget): unchanged
    return incidents, told


def messages(told: Transitions) -> list[tuple[str, str, bool]]:
    """(title, body, is_failure) of each message to send: at most one per kind of transition."""
    out: list[tuple[str, str, bool]] = []
    if told.down:
        out.append(
            (
                f"Baseline Guard patrol: {len(told.down)} instance(s) down",
                "Restarted, still down:\n" + "\n".join(f"✘ {k}: {r}" for k, r in told.down.items()),
                True,
            )
        )
    if told.still_down:
        out.append(
            (
                f"Baseline Guard patrol: {len(told.still_down)} instance(s) still down",
                "\n".join(f"✘ {k}: {r}" for k, r in told.still_down.items()),
                True,
            )
        )
    if told.recovered:
        out.append(
            (
                f"Baseline Guard patrol: {len(told.recovered)} instance(s) recovered",
                "\n".join(f"✔ {k}" for k in told.recovered),
                False,
            )
        )
    return out
