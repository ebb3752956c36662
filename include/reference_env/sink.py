"""The notification sink: what Apprise webhooks posted to ``/v1/notifications/<channel>``, for tests to read."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from reference_env.runtime import utcnow
from reference_env.store import Store

log = logging.getLogger(__name__)

MAX_NOTIFICATIONS = 1000


class NotificationSink:
    """Keeps the latest ``MAX_NOTIFICATIONS`` notifications, oldest first, in the store's records."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def receive(self, channel: str, body: Any) -> dict[str, Any]:
        record = {
            "id": uuid.uuid4().hex,
            "channel": channel,
            "received_at": utcnow().isoformat(),
            "body": body,
        }
        self.store.notifications.append(record)
        del self.store.notifications[:-MAX_NOTIFICATIONS]
        self.store.save()
        log.info("notification received on channel %s", channel)
        return record

    def received(self, channel: str | None) -> list[dict[str, Any]]:
        return [n for n in self.store.notifications if channel is None or n["channel"] == channel]

    def clear(self) -> int:
        count = len(self.store.notifications)
        self.store.notifications.clear()
        self.store.save()
        return count
