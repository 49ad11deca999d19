"""Which agents have the dashboard open, and what an agent has typed into a wrap-up not filed yet,
which every tab of theirs shares.

Each agent has one Redis sorted set of their open WebSockets (channel names), each scored with the
time until which it counts as open: AGENT_SOCKET_TTL_S from each heartbeat its tab sends. The web
process asks for one every third of that (a `presence.ping` frame: a tab answers from its message
handler, which a browser runs at once even in a background tab whose timers it throttles to one a
minute). Until its first heartbeat a socket counts as open for a day: a tab whose page predates
heartbeats is never taken for gone. A socket that closes cleanly leaves at once, and a `left` mark
stays for AGENT_DISCONNECT_GRACE_S in its place (a reload or a flaky network reconnects well within
it). A socket whose web process died, or whose tab went silent (a closed laptop), sends no heartbeat
and expires on its own: nothing has to notice the death. An agent is *present* while
anything in their set is unexpired; the agents' sweep (`agents.services.agents_gone_offline`) takes
the others offline, ringing included (the ring moves on), and marks them to come back as they were
when a tab of theirs opens again within COMES_BACK_WITHIN_S.

Times are Redis's own clock (TIME), the same for every process whatever their hosts' clocks say.
"""

import asyncio
import datetime
import weakref

import redis
import redis.asyncio as aioredis
from django.conf import settings
from django.core.cache import caches

LEFT = "left"  # the member that stands for the grace after a last socket closed cleanly
COMES_BACK_WITHIN_S = 15 * 60  # an agent taken offline for being gone returns as they were within this


def _prefix() -> str:
    # Under the channel layer's prefix: a deployment's (or a test session's) sockets are its own.
    return settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]


def _key(agent_id: int) -> str:
    # Not the `agent:sockets:` sets of before: a sorted set under a name of its own.
    return f"{_prefix()}:agent:presence:{agent_id}"


def _gone_key(agent_id: int) -> str:
    return f"{_prefix()}:agent:gone:{agent_id}"


def heartbeat_s() -> float:
    """How often a tab is asked to say it is still there: three heartbeats fit in a socket's time
    to live."""
    return settings.AGENT_SOCKET_TTL_S / 3


UNTIL_FIRST_HEARTBEAT_S = 24 * 3600


# One client per event loop (each web process's, each test's): a heartbeat every few seconds from
# every tab must not open a connection each time.
_clients: "weakref.WeakKeyDictionary[object, aioredis.Redis]" = weakref.WeakKeyDictionary()


def _async_client() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = aioredis.Redis.from_url(settings.REDIS_URL)
    return client


async def _now(client) -> float:
    seconds, microseconds = await client.time()
    return seconds + microseconds / 1e6


async def socket_opened(*, agent_id: int, channel_name: str) -> None:
    client = _async_client()
    now = await _now(client)
    async with client.pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(_key(agent_id), "-inf", now)  # what expired meanwhile
        pipe.zadd(_key(agent_id), {channel_name: now + UNTIL_FIRST_HEARTBEAT_S})
        pipe.expire(_key(agent_id), UNTIL_FIRST_HEARTBEAT_S + settings.AGENT_DISCONNECT_GRACE_S)
        await pipe.execute()


async def socket_heartbeat(*, agent_id: int, channel_name: str) -> bool:
    """The tab is still there: its socket counts as open for another AGENT_SOCKET_TTL_S. False
    when the socket had already expired (its tab was silent for too long): the agent may have been
    taken offline meanwhile, and the socket is counted again from now."""
    client = _async_client()
    now = await _now(client)
    async with client.pipeline(transaction=True) as pipe:
        pipe.zscore(_key(agent_id), channel_name)
        pipe.zadd(_key(agent_id), {channel_name: now + settings.AGENT_SOCKET_TTL_S})
        pipe.expire(_key(agent_id), UNTIL_FIRST_HEARTBEAT_S + settings.AGENT_DISCONNECT_GRACE_S)
        expires_at, _, _ = await pipe.execute()
    return expires_at is not None and expires_at > now


async def socket_closed(*, agent_id: int, channel_name: str) -> int:
    """Forget one socket, and leave the grace period's mark (what counts when no socket is left);
    returns how many sockets the agent still has open. One transaction: a sweep never finds the
    socket gone and the mark not there yet."""
    client = _async_client()
    now = await _now(client)
    async with client.pipeline(transaction=True) as pipe:
        pipe.zrem(_key(agent_id), channel_name)
        pipe.zadd(_key(agent_id), {LEFT: now + settings.AGENT_DISCONNECT_GRACE_S}, gt=True)
        pipe.expire(_key(agent_id), UNTIL_FIRST_HEARTBEAT_S + settings.AGENT_DISCONNECT_GRACE_S)
        pipe.zrangebyscore(_key(agent_id), now, "+inf")
        *_, open_now = await pipe.execute()
    return len([member for member in open_now if member != LEFT.encode()])


_sync_clients: dict[str, redis.Redis] = {}


def _sync_client() -> redis.Redis:
    """The process's client (thread-safe; its pool starts anew in a forked worker)."""
    client = _sync_clients.get(settings.REDIS_URL)
    if client is None:
        client = _sync_clients[settings.REDIS_URL] = redis.Redis.from_url(settings.REDIS_URL)
    return client


def is_rebuilding() -> bool:
    """Whether Redis started too recently for the sockets' presence to be whole again: it keeps
    nothing on disk, so after a restart an agent's set fills only as their tabs send heartbeats
    (within AGENT_SOCKET_TTL_S), and until then an empty set does not mean gone."""
    from core.selectors import redis_uptime_s

    return redis_uptime_s() < settings.AGENT_SOCKET_TTL_S


def _sync_now(client: redis.Redis) -> float:
    seconds, microseconds = client.time()
    return seconds + microseconds / 1e6


def open_socket_count(*, agent_id: int) -> int:
    """The agent's sockets open now (the grace's mark is not one)."""
    client = _sync_client()
    members = client.zrangebyscore(_key(agent_id), _sync_now(client), "+inf")
    return len([member for member in members if member != LEFT.encode()])


def agents_present(agent_ids: list[int]) -> set[int]:
    """Of these agents, those with a socket open now, or whose last one closed within the grace."""
    if not agent_ids:
        return set()
    client = _sync_client()
    now = _sync_now(client)
    pipe = client.pipeline(transaction=False)
    for agent_id in agent_ids:
        pipe.zcount(_key(agent_id), now, "+inf")
    counts = pipe.execute()
    return {agent_id for agent_id, count in zip(agent_ids, counts, strict=True) if count}


def gone_mark(*, agent_id: int, status: str, since: datetime.datetime) -> None:
    """The agent was taken offline at `since` for being gone from `status`: a tab that opens
    within COMES_BACK_WITHIN_S brings them back (`comes_back_to`), unless their presence changed
    since."""
    _sync_client().set(_gone_key(agent_id), f"{status} {since.isoformat()}", ex=COMES_BACK_WITHIN_S)


def comes_back_to(*, agent_id: int) -> tuple[str, datetime.datetime] | None:
    """(The status, the time the agent was taken offline) of the agent's gone mark, taken (so used
    once), or None."""
    mark = _sync_client().getdel(_gone_key(agent_id))
    if mark is None:
        return None
    status, since = mark.decode().split(" ", 1)
    return status, datetime.datetime.fromisoformat(since)


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
