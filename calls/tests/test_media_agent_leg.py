"""An agent can accept while the media process is still answering the customer: the agent's leg waits."""

import asyncio

import pytest
from channels.layers import get_channel_layer

from calls.bridge import CallBridge
from calls.media import CallMedia, MediaProcess
from whatsapp.sandbox.media import CustomerMedia

pytestmark = pytest.mark.django_db(transaction=True)  # the finished recording is offered to storage


@pytest.fixture(autouse=True)
def loopback_only(settings):
    settings.MEDIA_HOST_ADDRESSES = ["127.0.0.1"]
    settings.MEDIA_ICE_SERVERS = []


async def test_the_agents_offer_is_answered_once_the_customers_leg_is(tmp_path):
    layer = get_channel_layer()
    agent_channel = await layer.new_channel()
    await layer.group_add("agent.77", agent_channel)
    media = CallMedia(process=MediaProcess(handlers={}), spool_dir=tmp_path)
    bridge = CallBridge(call_id="41", recording_path=tmp_path / "call-41.wav", notice=None, hold=None)
    media.bridges[41], media.answered[41] = bridge, asyncio.Event()
    customer = CustomerMedia(play=None, record_to=None)
    agent = CustomerMedia(play=None, record_to=None)

    connecting = asyncio.ensure_future(
        media.connect_agent({"call_id": 41, "agent_id": 77, "sdp": await agent.create_offer()})
    )
    await asyncio.sleep(0.3)
    is_waiting = not connecting.done()
    await customer.accept_answer(await bridge.answer_customer(await customer.create_offer()))
    media.answered[41].set()  # what answer() does once Meta has accepted
    await asyncio.wait_for(connecting, 10)
    reply = await asyncio.wait_for(layer.receive(agent_channel), 5)
    await agent.accept_answer(reply["sdp"])
    await agent.wait_connected(timeout_s=5)

    assert is_waiting
    assert (reply["type"], reply["call_id"], reply["is_notice_playing"]) == ("call.media_answer", 41, False)
    assert bridge.is_agent_connected
    await customer.close()
    await agent.close()
    await media.hang_up({"type": "call.hangup", "call_id": 41})
    await layer.group_discard("agent.77", agent_channel)
    assert not (tmp_path / "call-41.wav").exists()  # no such call: the recording is discarded


async def test_an_offer_before_the_media_process_has_opened_the_call_is_answered_not_ready(tmp_path):
    """Between claiming the call and opening its bridge, an agent's offer is not lost: the softphone is
    told to offer again (as it is when no media process has the call yet)."""
    layer = get_channel_layer()
    agent_channel = await layer.new_channel()
    await layer.group_add("agent.78", agent_channel)
    media = CallMedia(process=MediaProcess(handlers={}), spool_dir=tmp_path)

    await media.connect_agent({"call_id": 42, "agent_id": 78, "sdp": "v=0\r\n"})
    reply = await asyncio.wait_for(layer.receive(agent_channel), 5)

    await layer.group_discard("agent.78", agent_channel)
    assert (reply["type"], reply["call_id"], reply["is_ready"]) == ("call.media_answer", 42, False)
    assert "not ready" in reply["error"]
