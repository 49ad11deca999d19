"""Channel-layer sends from synchronous code, and the one way services push realtime events.

Sync code (views, services, tasks) reaches the channel layer through one event loop per process,
kept in a background thread, so that every send reuses that loop's Redis connections. (With
`async_to_sync`, each send from a worker thread would start a loop and a connection of its own:
a few milliseconds per send, on every webhook.)
"""

import asyncio
import logging
import os
import threading
from collections.abc import Coroutine
from typing import Any

import redis
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

SEND_TIMEOUT_S = 5.0
# What a send may raise when Redis is down or restarting, or a channel is full.
SEND_ERRORS = (OSError, TimeoutError, redis.RedisError, ChannelFull)

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None


def _channel_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _lock:
        if _loop is None or _loop_pid != os.getpid():  # a forked child (Celery's prefork) needs its own
            _loop = asyncio.new_event_loop()
            _loop_pid = os.getpid()
            threading.Thread(target=_loop.run_forever, name="channel-layer", daemon=True).start()
        return _loop


def _run(coroutine: Coroutine) -> Any:
    return asyncio.run_coroutine_threadsafe(coroutine, _channel_loop()).result(SEND_TIMEOUT_S)


def channel_send(channel: str, message: dict[str, Any]) -> None:
    """Send to one channel from sync code (raises channels.exceptions.ChannelFull when it is full)."""
    _run(get_channel_layer().send(channel, message))


def group_send(group: str, event: dict[str, Any]) -> None:
    """Send to a group from sync code."""
    _run(get_channel_layer().group_send(group, event))


def broadcast_on_commit(group: str, event: dict[str, Any]) -> None:
    """Send `event` to the channel-layer `group` once the current transaction commits.

    `event` must carry a dotted `type` (routed to the consumer handler of that name) and only
    JSON-safe primitives (ids, strings, numbers), never model instances. Nothing is sent when
    the transaction rolls back.
    """
    if "type" not in event:
        raise ValueError("A realtime event needs a 'type'.")

    def send() -> None:
        # The change is committed: a browser missing one event must not turn it into an error.
        try:
            group_send(group, event)
        except SEND_ERRORS as error:
            logger.warning("realtime event %s to %s not sent: %r", event["type"], group, error)

    transaction.on_commit(send)
