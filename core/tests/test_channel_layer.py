"""`send_many` (core.channel_layer) stores what channels_redis's own sends store, in order, in two
Redis round trips."""

import asyncio
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from core.channel_layer import RedisChannelLayer, Send


def another_process() -> RedisChannelLayer:
    """A process's layer of its own: its specific channels share a Redis queue of their own. Each
    scenario makes its own rather than using the process-wide layer, whose receiving state belongs
    to the event loop of whichever earlier test received on it last."""
    return RedisChannelLayer(**settings.CHANNEL_LAYERS["default"]["CONFIG"])


async def drain(layer, channel: str, timeout_s: float = 0.2) -> list[dict]:
    received = []
    while True:
        try:
            received.append(await asyncio.wait_for(layer.receive(channel), timeout_s))
        except TimeoutError:
            return received


def test_the_project_layer_sends_many_at_once():
    assert isinstance(get_channel_layer(), RedisChannelLayer)


def test_send_many_delivers_what_one_by_one_sends_deliver():
    tag = uuid.uuid4().hex[:8]

    async def scenario(send_all) -> list[list[dict]]:
        here, there = another_process(), another_process()
        tab_1, tab_2 = await here.new_channel(), await here.new_channel()
        elsewhere = await there.new_channel()
        name = f"{tag}.{send_all.__name__}"
        group, general = f"test.many.{name}", f"test.many.general.{name}"
        for channel in (tab_1, tab_2, elsewhere):
            await here.group_add(group, channel)
        await send_all(
            here,
            [
                Send(group, {"type": "call.offered", "call_id": 1}, is_group=True),
                Send(tab_1, {"type": "call.taken", "call_id": 1}),
                Send(general, {"type": "call.answer", "call_id": 1}),
                Send(f"test.many.empty.{tag}", {"type": "nobody.listens"}, is_group=True),
            ],
        )
        return [
            await drain(here, tab_1),
            await drain(here, tab_2),
            await drain(there, elsewhere),
            await drain(there, general),
        ]

    async def at_once(layer, sends):
        assert await layer.send_many(sends) == [None] * len(sends)

    async def one_by_one(layer, sends):
        for send in sends:
            await (layer.group_send if send.is_group else layer.send)(send.target, send.message)

    together, alone = async_to_sync(scenario)(at_once), async_to_sync(scenario)(one_by_one)

    assert together == alone
    assert together == [
        [{"type": "call.offered", "call_id": 1}, {"type": "call.taken", "call_id": 1}],
        [{"type": "call.offered", "call_id": 1}],
        [{"type": "call.offered", "call_id": 1}],
        [{"type": "call.answer", "call_id": 1}],
    ]


def test_messages_to_one_queue_leave_in_the_order_they_were_sent_across_sends():
    async def scenario():
        layer = another_process()
        channel = await layer.new_channel()
        for start in range(0, 60, 3):  # each call within microseconds of the last
            await layer.send_many([Send(channel, {"type": "n", "n": n}) for n in range(start, start + 3)])
        return [message["n"] for message in await drain(layer, channel)]

    assert async_to_sync(scenario)() == list(range(60))


def test_a_full_queue_is_reported_and_the_other_messages_still_go():
    tag = uuid.uuid4().hex[:8]
    config = {**settings.CHANNEL_LAYERS["default"]["CONFIG"], "channel_capacity": {f"test.small.{tag}": 2}}

    async def scenario():
        layer = RedisChannelLayer(**config)
        outcomes = await layer.send_many(
            [Send(f"test.small.{tag}", {"type": "n", "n": n}) for n in range(3)]
            + [Send(f"test.roomy.{tag}", {"type": "n", "n": 3})]
        )
        small, roomy = await drain(layer, f"test.small.{tag}"), await drain(layer, f"test.roomy.{tag}")
        return outcomes, small, roomy

    outcomes, small, roomy = async_to_sync(scenario)()

    assert [type(outcome) for outcome in outcomes] == [type(None), type(None), ChannelFull, type(None)]
    assert [message["n"] for message in small] == [0, 1]
    assert [message["n"] for message in roomy] == [3]


def test_a_process_takes_what_is_queued_for_its_sockets_at_once_and_in_order(monkeypatch):
    takes = []
    take_queued = RedisChannelLayer._take_queued

    async def counting(self, channel, taken):
        await take_queued(self, channel, taken)
        takes.append(len(taken))

    monkeypatch.setattr(RedisChannelLayer, "_take_queued", counting)

    async def scenario():
        layer = another_process()
        tabs = [await layer.new_channel(), await layer.new_channel()]
        await layer.send_many([Send(tabs[n % 2], {"type": "n", "n": n}) for n in range(40)])
        first = [await layer.receive(tabs[0]) for _ in range(20)]
        second = [await layer.receive(tabs[1]) for _ in range(20)]
        late = asyncio.ensure_future(layer.receive(tabs[0]))  # nothing queued: it waits
        await asyncio.sleep(0.1)
        await layer.send_many([Send(tabs[0], {"type": "n", "n": 40})])
        return first, second, await asyncio.wait_for(late, 5)

    first, second, late = async_to_sync(scenario)()

    assert [message["n"] for message in first] == list(range(0, 40, 2))
    assert [message["n"] for message in second] == list(range(1, 40, 2))
    assert late == {"type": "n", "n": 40}
    assert takes[0] == 40  # one round trip for all forty


def test_a_message_that_cannot_be_sent_is_refused_alone():
    tag = uuid.uuid4().hex[:8]

    async def scenario():
        layer = get_channel_layer()
        outcomes = await layer.send_many(
            [
                Send("not a group name!", {"type": "n", "n": 0}, is_group=True),
                Send(f"test.alone.{tag}", {"type": "n", "n": 1}),
            ]
        )
        return outcomes, await drain(layer, f"test.alone.{tag}")

    outcomes, received = async_to_sync(scenario)()

    assert isinstance(outcomes[0], TypeError)
    assert outcomes[1] is None
    assert received == [{"type": "n", "n": 1}]


def test_the_layer_takes_one_redis_host():
    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]

    with pytest.raises(ImproperlyConfigured):
        RedisChannelLayer(**{**config, "hosts": config["hosts"] * 2})
