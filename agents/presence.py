"""Which agents have the dashboard open: one Redis set of WebSocket channels per agent; and what an
agent has typed into a wrap-up not filed yet, which every tab of theirs shares.

An agent whose last tab closed is taken offline after a grace period (a reload or a flaky
network reconnects well within it), so that nobody is rung who cannot hear it.
"""

import redis
import redis.asyncio as aioredis
from django.conf import settings
from django.core.cache import caches


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


# What an agent has typed into a wrap-up form and not filed yet: one draft per agent and call, kept in
# the shared Redis cache (every tab, and a reloaded one, gets it back) for a day at most, and deleted
# once the call is filed.
DRAFT_TTL_S = 24 * 3600


def _draft_key(agent_id: int, call_id: int) -> str:
    return f"wrap_up_draft:{agent_id}:{call_id}"


def wrap_up_draft_save(*, agent_id: int, call_id: int, disposition: str, notes: str) -> None:
    draft = {"disposition": disposition, "notes": notes}
    caches["api"].set(_draft_key(agent_id, call_id), draft, timeout=DRAFT_TTL_S)


def wrap_up_draft(*, agent_id: int, call_id: int) -> dict | None:
    """The agent's unfiled draft for this call ({"disposition", "notes"}), or None."""
    return caches["api"].get(_draft_key(agent_id, call_id))


def wrap_up_draft_delete(*, agent_id: int, call_id: int) -> None:
    caches["api"].delete(_draft_key(agent_id, call_id))
