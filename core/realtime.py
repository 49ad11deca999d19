"""Channel-layer sends from synchronous code, and the one way services push realtime events.

Sync code (views, services, tasks) reaches the channel layer through one event loop per process,
kept in a background thread, so that every send reuses that loop's Redis connections. (With
`async_to_sync`, each send from a worker thread would start a loop and a connection of its own:
a few milliseconds per send, on every webhook.)

What is sent once a transaction commits goes into the process's outbox and does not hold up the
code that committed: the loop sends whatever has gathered there, in order, with one `send_many`
(core.channel_layer), so a routing round that rings a hundred agents and hands a hundred calls
to the media processes costs two Redis round trips, not eight hundred. `flush()` waits for the
outbox to empty (tests; the process's exit does it too).
"""

import asyncio
import atexit
import logging
import os
import threading
from collections import deque
from collections.abc import Coroutine
from typing import Any

import redis
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.db import transaction

from core.channel_layer import Send

logger = logging.getLogger(__name__)

SEND_TIMEOUT_S = 5.0
# What a send may raise when Redis is down or restarting, or a channel is full.
SEND_ERRORS = (OSError, TimeoutError, redis.RedisError, ChannelFull)
OUTBOX_BATCH = 500  # messages in one send_many at most

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None


def _channel_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid, _sender
    with _lock:
        if _loop is None or _loop_pid != os.getpid():  # a forked child (Celery's prefork) needs its own
            _loop = asyncio.new_event_loop()
            _loop_pid = os.getpid()
            _outbox.clear()
            _sender = None
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


# --- The outbox: sends after commit --------------------------------------------------------

# (is_group, group or channel, message, log level if it cannot be sent); appended from any thread.
_outbox: deque[tuple[bool, str, dict[str, Any], int]] = deque()
_sender: asyncio.Task | None = None  # touched only on the loop's thread


def _post(is_group: bool, target: str, message: dict[str, Any], level: int) -> None:
    loop = _channel_loop()
    _outbox.append((is_group, target, message, level))
    loop.call_soon_threadsafe(_start_sending)


def _start_sending() -> None:
    global _sender
    if _sender is None or _sender.done():
        _sender = asyncio.get_running_loop().create_task(_send_outbox())


async def _send_outbox() -> None:
    layer = get_channel_layer()  # core.channel_layer's: everything gathered goes in one send_many
    while _outbox:
        batch = [_outbox.popleft() for _ in range(min(len(_outbox), OUTBOX_BATCH))]
        try:
            outcomes = await asyncio.wait_for(
                layer.send_many([Send(target, message, is_group) for is_group, target, message, _ in batch]),
                SEND_TIMEOUT_S,
            )
        except SEND_ERRORS as error:
            outcomes = [error] * len(batch)
        except Exception:
            logger.exception("%s realtime messages not sent", len(batch))
            continue
        for (_, target, message, level), outcome in zip(batch, outcomes, strict=True):
            if outcome is not None:
                # Committed already: a browser or process missing one message must not turn the
                # change into an error (sweeps and reconnects catch up).
                logger.log(level, "%s to %s not sent: %r", message.get("type"), target, outcome)


def flush(timeout_s: float = SEND_TIMEOUT_S * 2) -> None:
    """Wait until everything in the outbox has been sent (or given up)."""
    if _loop is None or _loop_pid != os.getpid():
        return

    async def emptied() -> None:
        while _outbox or (_sender is not None and not _sender.done()):
            if _sender is not None and not _sender.done():
                await asyncio.wait([_sender])
            else:
                await asyncio.sleep(0)

    try:
        asyncio.run_coroutine_threadsafe(emptied(), _loop).result(timeout_s)
    except TimeoutError:
        logger.warning("%s realtime messages still unsent after %.0f s", len(_outbox), timeout_s)


atexit.register(flush)


def send_on_commit(channel: str, message: dict[str, Any]) -> None:
    """Send `message` to one channel (a process's, or a shared one) once the transaction commits.

    A send that fails (Redis down, the channel full) is logged as an error: the message was work
    for a process, and whatever retries that work (a sweep) must now do it.
    """
    transaction.on_commit(lambda: _post(False, channel, message, logging.ERROR))


def broadcast_on_commit(group: str, event: dict[str, Any]) -> None:
    """Send `event` to the channel-layer `group` once the current transaction commits.

    `event` must carry a dotted `type` (routed to the consumer handler of that name) and only
    JSON-safe primitives (ids, strings, numbers), never model instances. Nothing is sent when
    the transaction rolls back.
    """
    if "type" not in event:
        raise ValueError("A realtime event needs a 'type'.")

    transaction.on_commit(lambda: _post(True, group, event, logging.WARNING))
