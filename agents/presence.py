"""Which agents have the dashboard open: one Redis set of WebSocket channels per agent.

An agent whose last tab closed is taken offline after a grace period (a reload or a flaky
network reconnects well within it), so that nobody is rung who cannot hear it.
"""

import redis
import redis.asyncio as aioredis
from django.conf import settings


def _key(agent_id: int) -> str:
    # Under the channel layer's prefix: a deployment's (or a test session's) sockets are its own.
    return f"{settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}:agent:sockets:{agent_id}"


async def socket_opened(*, agent_id: int, channel_name: str) -> None:
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    try:
        await client.sadd(_key(agent_id), channel_name)
    finally:
        await client.aclose()


async def socket_closed(*, agent_id: int, channel_name: str) -> int:
    """Forget one socket; returns how many the agent still has open."""
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    try:
        await client.srem(_key(agent_id), channel_name)
        return await client.scard(_key(agent_id))
    finally:
        await client.aclose()


def open_socket_count(*, agent_id: int) -> int:
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return client.scard(_key(agent_id))
    finally:
        client.close()
