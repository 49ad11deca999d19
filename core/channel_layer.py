"""The channel layer: channels_redis's, plus `send_many`, which delivers many messages at once.

channels_redis sends each message on its own: four Redis round trips for a message to a channel
(trim, count, add, expire) and four for a message to a group (trim the group, read its members,
trim their queues, add). A burst of callers rings a room of agents and hands each call to the
media processes: hundreds of sends a second from one web process, each paying those round trips
in Python. `send_many` does what those sends do, in order, in two round trips: one reads the
members of every group named, one script adds every message to its queue.

It stores exactly what channels_redis's own sends store (the same keys, capacities, expiry and
serialised messages), so channels_redis's receive reads them as it reads its own.
"""

import time
from dataclasses import dataclass

from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer as ChannelsRedisLayer

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


@dataclass(frozen=True)
class Send:
    """One message for `send_many`: to a group's members, or to one channel."""

    target: str
    message: dict
    is_group: bool = False


class RedisChannelLayer(ChannelsRedisLayer):
    _last_score = 0.0

    async def send_many(self, sends: list[Send]) -> list[ChannelFull | None]:
        """Deliver `sends` in order: for each, None, or ChannelFull when its channel's queue was
        full (the message was dropped; for a group, some member's queue was full and the others
        got it). With several Redis hosts the messages go one by one, as channels_redis sends."""
        if self.ring_size != 1:
            return [await self._send_one(send) for send in sends]
        connection = self.connection(0)
        now = time.time()
        members = await self._group_members(connection, {send.target for send in sends if send.is_group}, now)
        keys, messages, capacities, owners = [], [], [], []
        for position, send in enumerate(sends):
            for key, message, capacity in self._queued(send, members):
                keys.append(key)
                messages.append(message)
                capacities.append(capacity)
                owners.append(position)
        outcomes: list[ChannelFull | None] = [None] * len(sends)
        if not keys:
            return outcomes
        full = await connection.eval(
            _ADD_MESSAGES,
            len(keys),
            *keys,
            *messages,
            *capacities,
            *self._scores(len(keys), now),
            int(now) - int(self.expiry),
            int(self.expiry),
        )
        for position in full:
            outcomes[owners[int(position) - 1]] = ChannelFull()
        return outcomes

    async def _send_one(self, send: Send) -> ChannelFull | None:
        try:
            if send.is_group:
                await self.group_send(send.target, send.message)
            else:
                await self.send(send.target, send.message)
        except ChannelFull as error:
            return error
        return None

    async def _group_members(self, connection, groups: set[str], now: float) -> dict[str, list[str]]:
        """Each group's channels, after dropping those past the group expiry (as group_send does)."""
        if not groups:
            return {}
        ordered = sorted(groups)
        async with connection.pipeline(transaction=False) as pipe:
            for group in ordered:
                assert self.require_valid_group_name(group), "Group name not valid"
                key = self._group_key(group)
                pipe.zremrangebyscore(key, min=0, max=int(now) - self.group_expiry)
                pipe.zrange(key, 0, -1)
            replies = await pipe.execute()
        return {
            group: [name.decode("utf8") for name in replies[2 * index + 1]]
            for index, group in enumerate(ordered)
        }

    def _queued(self, send: Send, members: dict[str, list[str]]) -> list[tuple[str, bytes, int]]:
        """(queue key, serialised message, capacity) of each queue `send` adds to."""
        if send.is_group:
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

    def _scores(self, count: int, now: float) -> list[str]:
        """Increasing scores from now: a queue hands out its messages in score order, so messages
        to one queue leave in the order they were sent, across calls as within one."""
        start = max(now, self._last_score + 1e-5)
        scores = [start + index * 1e-5 for index in range(count)]
        self._last_score = scores[-1]
        return [repr(score) for score in scores]
