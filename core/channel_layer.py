"""The channel layer: channels_redis's, plus `send_many`, which delivers many messages at once.

channels_redis sends each message on its own: four Redis round trips for a message to a channel
(trim, count, add, expire) and four for a message to a group (trim the group, read its members,
trim their queues, add). A burst of callers rings a room of agents and hands each call to the
media processes: hundreds of sends a second from one web process, each paying those round trips
in Python. `send_many` does what those sends do, in order, in two round trips: one reads the
members of every group named, one script adds every message to its queue.

It stores exactly what channels_redis's own sends store (the same keys, capacities, expiry and
serialised messages), so channels_redis's receive reads them as it reads its own.

Receiving is the mirror image. A process's sockets (an agent's tabs, wallboards) share one Redis
queue, which channels_redis reads one message at a time, each with four round trips (put back
what an interrupted read left, pop, keep a backup, drop the backup): ten agents rung in this
process at once waited for forty round trips in turn. `receive_single` takes everything queued
there (up to RECEIVE_AT_ONCE) in one script, keeps it in memory and hands it out one message at
a time, as channels_redis's `receive` expects; only an empty queue is waited on as before.
"""

import asyncio
import time
from collections import deque
from dataclasses import dataclass

from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer as ChannelsRedisLayer
from django.core.exceptions import ImproperlyConfigured

# KEYS: the queue of each message (a queue may come more than once). ARGV: the messages, their
# queues' capacities, their scores (in sending order), then the cut-off below which a queue's
# messages have expired, and the queues' expiry in seconds. Returns the positions (1-based) of
# the messages whose queue was full.
_ADD_MESSAGES = """
local count = #KEYS
local cut_off, expiry = ARGV[3 * count + 1], ARGV[3 * count + 2]
local trimmed, full = {}, {}
for i = 1, count do
    local key = KEYS[i]
    if not trimmed[key] then
        redis.call('ZREMRANGEBYSCORE', key, 0, cut_off)
        trimmed[key] = true
    end
    if redis.call('ZCOUNT', key, '-inf', '+inf') < tonumber(ARGV[count + i]) then
        redis.call('ZADD', key, ARGV[2 * count + i], ARGV[i])
        redis.call('EXPIRE', key, expiry)
    else
        full[#full + 1] = i
    end
end
return full
"""


RECEIVE_AT_ONCE = 200  # messages taken off a process's queue in one round trip at most

# KEYS: a process's queue and its backup. ARGV: how many messages at most. What an interrupted
# read left in the backup goes back to the queue first (as channels_redis does before each read);
# the messages taken are kept in the backup until the reader holds them. Returns them with their
# scores, oldest first.
_TAKE_QUEUED = """
local backed_up = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = #backed_up, 1, -2 do
    redis.call('ZADD', KEYS[1], backed_up[i], backed_up[i - 1])
end
redis.call('DEL', KEYS[2])
local taken = redis.call('ZPOPMIN', KEYS[1], ARGV[1])
for i = 1, #taken, 2 do
    redis.call('ZADD', KEYS[2], taken[i + 1], taken[i])
end
return taken
"""


@dataclass(frozen=True)
class Send:
    """One message for `send_many`: to a group's members, or to one channel."""

    target: str
    message: dict
    is_group: bool = False


class RedisChannelLayer(ChannelsRedisLayer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.ring_size != 1:
            raise ImproperlyConfigured("The channel layer takes one Redis host (sharding is not supported).")
        self._taken: dict[str, deque[tuple[str | list[str], dict]]] = {}  # by process queue
        self._last_scores: dict[str, float] = {}  # by queue

    async def receive_single(self, channel: str) -> tuple[str | list[str], dict]:
        """The next message for this process's queue `channel` (its sockets' channels share it):
        from those taken off Redis together, or, when none are left, everything queued there at
        once. The other channels (a shared one, say) are read as channels_redis reads them."""
        if "!" not in channel:
            return await super().receive_single(channel)
        taken = self._taken.setdefault(channel, deque())
        if not taken:
            await self._take_queued(channel, taken)
        if not taken:  # nothing queued: wait for the next message as channels_redis does
            return await super().receive_single(channel)
        return taken.popleft()

    async def flush(self) -> None:
        self._taken.clear()
        await super().flush()

    async def _take_queued(self, channel: str, taken: deque) -> None:
        assert self.require_valid_channel_name(channel, receive=True), "Channel name invalid"
        key = self.prefix + channel
        backup = self._backup_channel_name(key)
        connection = self.connection(0)
        await self.receive_clean_locks.acquire(key)
        try:
            replies = await connection.eval(_TAKE_QUEUED, 2, key, backup, RECEIVE_AT_ONCE)
        except BaseException:
            self.receive_clean_locks.release(key)
            raise
        if not replies:
            self.receive_clean_locks.release(key)
            return
        # The backup goes once the messages are read into memory (as channels_redis's cleaner
        # drops each message's); the lock is released when it has gone, whatever the reading does.
        cleaner = asyncio.ensure_future(connection.delete(backup))
        self.receive_cleaners.append(cleaner)

        def cleaned(cleaner) -> None:
            self.receive_cleaners.remove(cleaner)
            self.receive_clean_locks.release(key)

        cleaner.add_done_callback(cleaned)
        for content in replies[::2]:
            message = self.deserialize(content)
            taken.append((message.pop("__asgi_channel__", channel), message))

    async def send_many(self, sends: list[Send]) -> list[Exception | None]:
        """Deliver `sends` in order: for each, None, or ChannelFull when its channel's queue was
        full (the message was dropped; for a group, some member's queue was full and the others
        got it), or the error that made it unsendable (an invalid name, say): the others still go."""
        connection = self.connection(0)
        now = time.time()
        members = await self._group_members(connection, {send.target for send in sends if send.is_group}, now)
        keys, messages, capacities, owners = [], [], [], []
        outcomes: list[Exception | None] = [None] * len(sends)
        for position, send in enumerate(sends):
            try:
                queued = self._queued(send, members)
            except (AssertionError, TypeError, ValueError) as error:  # not a name or not serialisable
                outcomes[position] = error
                continue
            for key, message, capacity in queued:
                keys.append(key)
                messages.append(message)
                capacities.append(capacity)
                owners.append(position)
        if not keys:
            return outcomes
        full = await connection.eval(
            _ADD_MESSAGES,
            len(keys),
            *keys,
            *messages,
            *capacities,
            *self._scores(keys, now),
            int(now) - int(self.expiry),
            int(self.expiry),
        )
        for position in full:
            outcomes[owners[int(position) - 1]] = ChannelFull()
        return outcomes

    async def _group_members(self, connection, groups: set[str], now: float) -> dict[str, list[str]]:
        """Each group's channels, after dropping those past the group expiry (as group_send does)."""
        if not groups:
            return {}
        ordered = sorted(group for group in groups if self._is_group_name(group))
        async with connection.pipeline(transaction=False) as pipe:
            for group in ordered:
                key = self._group_key(group)
                pipe.zremrangebyscore(key, min=0, max=int(now) - self.group_expiry)
                pipe.zrange(key, 0, -1)
            replies = await pipe.execute()
        return {
            group: [name.decode("utf8") for name in replies[2 * index + 1]]
            for index, group in enumerate(ordered)
        }

    def _is_group_name(self, name: str) -> bool:
        try:
            return self.require_valid_group_name(name)
        except TypeError:
            return False  # its send is refused on its own (_queued)

    def _queued(self, send: Send, members: dict[str, list[str]]) -> list[tuple[str, bytes, int]]:
        """(queue key, serialised message, capacity) of each queue `send` adds to."""
        if send.is_group:
            self.require_valid_group_name(send.target)
            channels = members[send.target]
            by_key, messages, capacities = self._map_channel_keys_to_connection(channels, send.message)
            return [(key, messages[key], capacities[key]) for keys in by_key.values() for key in keys]
        channel, message = send.target, send.message
        assert isinstance(message, dict), "message is not a dict"
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        assert "__asgi_channel__" not in message
        if "!" in channel:
            message = {**message, "__asgi_channel__": channel}
            channel = self.non_local_name(channel)
        return [(self.prefix + channel, self.serialize(message), self.get_capacity(send.target))]

    def _scores(self, keys: list[str], now: float) -> list[str]:
        """Increasing scores from now for the messages of each queue: a queue hands out its
        messages in score order, so those to one queue leave in the order they were sent, across
        calls as within one."""
        scores = []
        for key in keys:
            score = max(now, self._last_scores.get(key, 0.0) + 1e-6)
            self._last_scores[key] = score
            scores.append(repr(score))
        return scores
