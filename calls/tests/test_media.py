import asyncio
import json
import os
import socket
import uuid

import redis.asyncio as redis
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers
from django.conf import settings

from calls.media import HEARTBEAT_KEY_PREFIX, SHARED_CHANNEL, MediaProcess


async def test_media_process_takes_shared_and_own_channel_messages_and_heartbeats():
    handled: list[dict] = []
    arrived = asyncio.Event()

    async def record(message: dict) -> None:
        handled.append(message)
        if len(handled) == 2:
            arrived.set()

    # A channel of this test's own stands for the shared one: any other media process on this Redis
    # (a developer's `make run`, say) listens on the real shared channel and could take the message.
    shared = f"{SHARED_CHANNEL}.test-{uuid.uuid4().hex}"
    media = MediaProcess(handlers={"test.media": record}, shared_channel=shared)
    # A channel layer of its own, as a media process has (one a process): the suite's process-wide
    # one may still be read, from another event loop, by what an earlier test left, which would
    # take this process's messages off their shared queue.
    media.channel_layer = layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    stop = asyncio.Event()
    running = asyncio.create_task(media.run(stop=stop))
    while not media.channel_name:
        await asyncio.sleep(0.01)
    client = redis.Redis.from_url(settings.REDIS_URL)

    await layer.send(shared, {"type": "test.media", "via": "shared"})
    await layer.send(media.channel_name, {"type": "test.media", "via": "own"})
    await asyncio.wait_for(arrived.wait(), 5)
    is_alive = await client.exists(HEARTBEAT_KEY_PREFIX + media.channel_name)
    reported = json.loads(await client.get(HEARTBEAT_KEY_PREFIX + media.channel_name))
    stop.set()
    await asyncio.wait_for(running, 5)

    assert sorted(message["via"] for message in handled) == ["own", "shared"]
    assert is_alive == 1
    assert reported["calls"] == 0 and reported["cpu_s"] > 0  # what /metrics shows of it
    assert (reported["host"], reported["pid"]) == (socket.gethostname(), os.getpid())  # where it runs
    assert await client.exists(HEARTBEAT_KEY_PREFIX + media.channel_name) == 0
    await client.aclose()


async def test_media_process_survives_unknown_and_failing_messages():
    async def explode(message: dict) -> None:
        raise RuntimeError("one call failed")

    media = MediaProcess(handlers={"test.explode": explode})

    await media.dispatch({"type": "test.unknown"})
    await media.dispatch({"type": "test.explode"})
    await media.dispatch({})
