"""The one way services push realtime events to browsers: after the transaction commits."""

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction


def broadcast_on_commit(group: str, event: dict[str, Any]) -> None:
    """Send `event` to the channel-layer `group` once the current transaction commits.

    `event` must carry a dotted `type` (routed to the consumer handler of that name) and only
    JSON-safe primitives (ids, strings, numbers), never model instances. Nothing is sent when
    the transaction rolls back.
    """
    if "type" not in event:
        raise ValueError("A realtime event needs a 'type'.")

    def send() -> None:
        async_to_sync(get_channel_layer().group_send)(group, event)

    transaction.on_commit(send)
