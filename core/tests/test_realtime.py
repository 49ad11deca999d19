import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from core.realtime import broadcast_on_commit, flush


async def listen(group: str):
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    return layer, channel


async def receive_or_none(layer, channel: str, timeout_s: float = 1.0):
    try:
        return await asyncio.wait_for(layer.receive(channel), timeout_s)
    except TimeoutError:
        return None


@pytest.mark.django_db(transaction=True)
def test_broadcast_on_commit_sends_after_commit():
    layer, channel = async_to_sync(listen)("test.realtime.commit")

    with transaction.atomic():
        broadcast_on_commit("test.realtime.commit", {"type": "thing.changed", "thing_id": 7})

    assert async_to_sync(receive_or_none)(layer, channel) == {"type": "thing.changed", "thing_id": 7}


@pytest.mark.django_db(transaction=True)
def test_broadcast_on_commit_sends_nothing_on_rollback():
    layer, channel = async_to_sync(listen)("test.realtime.rollback")

    with pytest.raises(RuntimeError), transaction.atomic():
        broadcast_on_commit("test.realtime.rollback", {"type": "thing.changed", "thing_id": 7})
        raise RuntimeError("roll back")

    assert async_to_sync(receive_or_none)(layer, channel, 0.3) is None


def test_broadcast_on_commit_requires_a_type():
    with pytest.raises(ValueError):
        broadcast_on_commit("test.realtime", {"thing_id": 7})


UNREACHABLE_LAYER = {
    "default": {
        "BACKEND": "core.channel_layer.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0", "socket_connect_timeout": 0.2}]},
    }
}


@pytest.mark.django_db(transaction=True)
def test_broadcast_after_commit_survives_redis_being_down(settings, caplog):
    settings.CHANNEL_LAYERS = UNREACHABLE_LAYER

    with transaction.atomic():
        broadcast_on_commit("test.realtime.down", {"type": "thing.changed", "thing_id": 7})
    flush()

    # The committed change is not turned into an error (compare the test below, where the same
    # send raises): the send was tried after commit, failed, and said so.
    assert "thing.changed to test.realtime.down not sent" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_send_from_sync_code_raises_when_redis_is_down(settings):
    from core.realtime import SEND_ERRORS, group_send

    settings.CHANNEL_LAYERS = UNREACHABLE_LAYER

    with pytest.raises(SEND_ERRORS):
        group_send("test.realtime.down", {"type": "thing.changed", "thing_id": 7})


@pytest.mark.django_db(transaction=True)
def test_events_to_one_group_arrive_in_the_order_they_were_committed():
    layer, channel = async_to_sync(listen)("test.realtime.order")

    with transaction.atomic():
        for index in range(40):
            broadcast_on_commit("test.realtime.order", {"type": "thing.changed", "thing_id": index})
            broadcast_on_commit(f"test.realtime.other.{index}", {"type": "thing.changed", "thing_id": index})
    flush()

    async def receive_all():
        return [await receive_or_none(layer, channel) for _ in range(40)]

    assert [event["thing_id"] for event in async_to_sync(receive_all)()] == list(range(40))


@pytest.mark.django_db(transaction=True)
def test_a_burst_to_every_socket_of_one_process_is_not_dropped():
    """Sockets of one process share one Redis queue: 400 frames at once (200 agents rung, each
    with a presence change) must all arrive, beyond channels_redis's default capacity of 100."""

    async def listen_all():
        layer = get_channel_layer()
        channels = [await layer.new_channel() for _ in range(200)]
        for index, channel in enumerate(channels):
            await layer.group_add(f"test.realtime.agent.{index}", channel)
        return layer, channels

    layer, channels = async_to_sync(listen_all)()
    with transaction.atomic():
        for index in range(200):
            broadcast_on_commit(f"test.realtime.agent.{index}", {"type": "agent.status", "n": index})
            broadcast_on_commit(f"test.realtime.agent.{index}", {"type": "call.offered", "n": index})
    flush()

    async def receive_all():
        return [await receive_or_none(layer, channel) for channel in channels for _ in range(2)]

    frames = async_to_sync(receive_all)()
    assert None not in frames
    assert len(frames) == 400
