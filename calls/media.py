"""The media process runtime: one asyncio loop that owns the live peer connections of its calls.

Each media process listens on two channel-layer channels: the shared `media.calls` channel, where
any idle process takes the next new call, and its own unique channel, which the Call row records
so that later messages for that call (browser SDP, hangup, hold) reach the process holding it.
A heartbeat key in Redis tells the rest of the deployment which media processes are alive.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as redis
from channels.layers import get_channel_layer
from django.conf import settings

logger = logging.getLogger(__name__)

SHARED_CHANNEL = "media.calls"
HEARTBEAT_KEY_PREFIX = "switchboard:media:alive:"
HEARTBEAT_INTERVAL_S = 5
HEARTBEAT_TTL_S = 15

Handler = Callable[[dict], Awaitable[None]]


class MediaProcess:
    def __init__(self, *, handlers: dict[str, Handler] | None = None) -> None:
        self.handlers = handlers or {}
        self.channel_layer = get_channel_layer()
        self.channel_name = ""

    async def run(self, *, stop: asyncio.Event) -> None:
        self.channel_name = await self.channel_layer.new_channel(prefix="media")
        logger.info("media process listening on %s and %s", SHARED_CHANNEL, self.channel_name)
        tasks = [
            asyncio.create_task(self._heartbeat(stop)),
            asyncio.create_task(self._serve(SHARED_CHANNEL, stop)),
            asyncio.create_task(self._serve(self.channel_name, stop)),
        ]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, channel: str, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                message = await self.channel_layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except (OSError, redis.RedisError) as error:  # Redis starting or restarting: wait for it
                logger.warning("media process could not read %s (%s); retrying", channel, error)
                await asyncio.sleep(1)
                continue
            await self.dispatch(message)

    async def dispatch(self, message: dict) -> None:
        handler = self.handlers.get(message.get("type", ""))
        if handler is None:
            logger.warning("media process ignored a message of unknown type %r", message.get("type"))
            return
        try:
            await handler(message)
        except Exception:
            logger.exception("media process failed handling %r", message.get("type"))

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        client = redis.Redis.from_url(settings.REDIS_URL)
        key = HEARTBEAT_KEY_PREFIX + self.channel_name
        try:
            while not stop.is_set():
                try:
                    await client.set(key, "1", ex=HEARTBEAT_TTL_S)
                except redis.RedisError:
                    logger.warning("media process heartbeat could not reach Redis")
                await asyncio.sleep(HEARTBEAT_INTERVAL_S)
        finally:
            with contextlib.suppress(redis.RedisError):
                await client.delete(key)
            await client.aclose()
