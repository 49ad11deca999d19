"""An agent whose audio is lost mid-call (their laptop slept, their network or tab went): the customer
hears the hold audio, then goes to another agent, first in line; the agent is put away."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from agents.models import Agent
from calls import routing
from calls.bridge import CallBridge
from calls.media import CallMedia, MediaProcess
from calls.models import Call, CallEvent, LiveCallCount
from calls.tests.factories import CallFactory
from whatsapp.sandbox.media import CustomerMedia

pytestmark = pytest.mark.django_db

LOST = "the agent's audio was lost"


@pytest.fixture(autouse=True)
def loopback_only(settings):
    settings.MEDIA_HOST_ADDRESSES = ["127.0.0.1"]
    settings.MEDIA_ICE_SERVERS = []


@pytest.fixture
def frames(monkeypatch):
    """What routing tells the agents' tabs: (group, frame), as sent after commit."""
    sent = []
    monkeypatch.setattr(routing, "broadcast_on_commit", lambda group, frame: sent.append((group, frame)))
    return sent


def connected_call(*, queue, number, agent, queued_ago_s: float = 60, **fields) -> Call:
    LiveCallCount.objects.get_or_create(business_number=number, direction=fields.get("direction", "inbound"))
    LiveCallCount.objects.filter(business_number=number).update(live=1)
    now = timezone.now()
    fields = {
        "status": Call.Status.CONNECTED,
        "queued_at": now - timedelta(seconds=queued_ago_s),
        "connected_at": now - timedelta(seconds=30),
        "media_channel": "media.test!1",
        **fields,
    }
    return CallFactory(queue=queue, business_number=number, agent=agent, **fields)


def status_of(agent: Agent) -> str:
    agent.refresh_from_db()
    return agent.status


def test_the_call_goes_back_to_its_queue_first_in_line_and_the_agent_is_put_away(
    queue, number, make_agent, frames
):
    lost = make_agent(status=Agent.Status.ON_CALL)
    next_agent = make_agent(status=Agent.Status.AWAY)
    call = connected_call(queue=queue, number=number, agent=lost, queued_ago_s=120)
    later_caller = CallFactory(
        queue=queue,
        business_number=number,
        status=Call.Status.QUEUED,
        queued_at=timezone.now() - timedelta(seconds=60),
        media_channel="media.test!2",
    )

    outcome = routing.call_agent_lost(call_id=call.pk, agent_id=lost.pk)
    call.refresh_from_db()
    queued = (call.status, call.agent_id)
    Agent.objects.filter(pk=next_agent.pk).update(status=Agent.Status.AVAILABLE)
    routing.route_queue(queue_id=queue.pk)

    call.refresh_from_db()
    later_caller.refresh_from_db()
    assert outcome == "requeued"
    assert queued == ("queued", None)
    assert (call.status, call.offered_to_id, later_caller.status) == ("offered", next_agent.pk, "queued")
    assert status_of(lost) == "away"
    assert (
        f"agent.{lost.pk}",
        {"type": "call.taken_back", "call_id": call.pk, "agent_id": lost.pk},
    ) in frames
    event = CallEvent.objects.get(call=call, from_status="connected", to_status="queued")
    assert (event.agent_id, event.detail) == (lost.pk, LOST)


def test_the_next_agent_takes_the_call_on_from_its_first_connection_with_the_hold_closed(
    queue, number, make_agent, frames
):
    lost = make_agent(status=Agent.Status.ON_CALL)
    call = connected_call(queue=queue, number=number, agent=lost)
    first_connected_at = call.connected_at
    Call.objects.filter(pk=call.pk).update(held_since=timezone.now() - timedelta(seconds=12), hold_seconds=3)
    routing.call_agent_lost(call_id=call.pk, agent_id=lost.pk)
    call.refresh_from_db()
    hold = (call.held_since, call.hold_seconds)
    next_agent = make_agent()  # routing offers the call as the agent becomes available
    routing.route_queue(queue_id=queue.pk)

    taken = routing.offer_accept(agent_id=next_agent.pk, call_id=call.pk)
    ended = routing.call_finish(call_id=call.pk, reason=Call.EndReason.COMPLETED)

    call.refresh_from_db()
    assert hold == (None, 15)
    assert taken is not None
    assert (call.agent_id, call.connected_at) == (next_agent.pk, first_connected_at)
    assert call.talk_seconds >= 30  # from the first agent's answer: the customer has been on since
    assert (ended.agent_id, status_of(next_agent), status_of(lost)) == (next_agent.pk, "wrap_up", "away")


def test_a_call_we_placed_ends_with_the_closing_message_when_its_agent_is_lost(
    number, make_agent, frames, django_capture_on_commit_callbacks
):
    lost = make_agent(status=Agent.Status.ON_CALL)
    call = connected_call(queue=None, number=number, agent=lost, direction=Call.Direction.OUTBOUND)

    with django_capture_on_commit_callbacks() as callbacks:
        outcome = routing.call_agent_lost(call_id=call.pk, agent_id=lost.pk)

    call.refresh_from_db()
    assert outcome == "ended"
    assert (call.status, call.end_reason, call.end_detail) == ("ended", "failed", LOST)
    assert status_of(lost) == "away"
    assert callbacks  # the media process's hang-up (after the closing message) and Meta's terminate


def test_nothing_changes_for_a_call_no_longer_connected_to_that_agent(queue, number, make_agent, frames):
    lost = make_agent(status=Agent.Status.ON_CALL)
    other = make_agent(status=Agent.Status.ON_CALL)
    call = connected_call(queue=queue, number=number, agent=other)
    ended = connected_call(queue=queue, number=number, agent=None, status=Call.Status.ENDED)

    outcomes = [
        routing.call_agent_lost(call_id=call.pk, agent_id=lost.pk),  # another agent's call
        routing.call_agent_lost(call_id=ended.pk, agent_id=lost.pk),
        routing.call_agent_lost(call_id=call.pk, agent_id=None),  # no leg was ever connected
    ]

    call.refresh_from_db()
    assert outcomes == [None, None, None]
    assert (call.status, call.agent_id, status_of(lost), status_of(other)) == (
        "connected",
        other.pk,
        "on_call",
        "on_call",
    )
    assert frames == []


def test_a_call_taken_back_waits_the_queues_maximum_afresh(queue, number, make_agent, frames):
    lost = make_agent(status=Agent.Status.ON_CALL)
    call = connected_call(queue=queue, number=number, agent=lost, queued_ago_s=queue.max_wait_s + 60)
    routing.call_agent_lost(call_id=call.pk, agent_id=lost.pk)

    swept_at_once = routing.sweep()["waits_ended"]
    CallEvent.objects.filter(call=call, to_status="queued").update(
        at=timezone.now() - timedelta(seconds=queue.max_wait_s + 1)
    )
    ended = routing.call_wait_overdue(call_id=call.pk)

    call.refresh_from_db()
    assert swept_at_once == 0
    assert ended is not None
    assert (call.status, call.end_reason) == ("ended", "no_agent")


@pytest.mark.django_db(transaction=True)  # routing runs after commit, as in the product
async def test_the_media_process_hands_the_customer_to_another_agent_when_the_agents_leg_goes(
    tmp_path, settings, queue, number, make_agent
):
    """Real legs: the agent's browser stops sending; the customer hears hold audio, the call is
    offered to the next agent, whose leg takes over. A leg that comes back in time (a reload) keeps
    the call with its agent."""
    settings.MEDIA_SILENCE_TIMEOUT_S = 0.5
    settings.AGENT_LEG_GRACE_S = 1.0
    lost = await sync_to_async(make_agent)(status=Agent.Status.ON_CALL)
    call = await sync_to_async(connected_call)(queue=queue, number=number, agent=lost)
    next_agent = await sync_to_async(make_agent)()  # free: rung as soon as the call is back in line
    layer = get_channel_layer()
    lost_tab = await layer.new_channel()
    await layer.group_add(f"agent.{lost.pk}", lost_tab)
    media = CallMedia(process=MediaProcess(handlers={}), spool_dir=tmp_path)
    bridge = CallBridge(call_id=str(call.pk), recording_path=tmp_path / "call.ogg", notice=None, hold=None)
    media.bridges[call.pk], media.answered[call.pk] = bridge, asyncio.Event()
    media.answered[call.pk].set()
    customer = CustomerMedia(play=None, record_to=None)
    first_leg, reloaded_leg, next_leg = (CustomerMedia(play=None, record_to=None) for _ in range(3))

    async def connect(leg: CustomerMedia, agent_id: int, channel: str) -> None:
        await media.connect_agent({"call_id": call.pk, "agent_id": agent_id, "sdp": await leg.create_offer()})
        while (reply := await asyncio.wait_for(layer.receive(channel), 5))["type"] != "call.media_answer":
            pass
        await leg.accept_answer(reply["sdp"])
        await leg.wait_connected(timeout_s=5)

    async def stalled():
        await asyncio.Event().wait()

    await customer.accept_answer(await bridge.answer_customer(await customer.create_offer()))
    await connect(first_leg, lost.pk, lost_tab)
    await first_leg.close()  # the agent reloads the page
    await asyncio.sleep(0.3)
    await connect(reloaded_leg, lost.pk, lost_tab)
    await asyncio.sleep(settings.AGENT_LEG_GRACE_S + 0.5)
    after_reload = await sync_to_async(Call.objects.values_list("status", "agent_id").get)(pk=call.pk)

    reloaded_leg._speech.recv = stalled  # the laptop sleeps: no packet, the connection still up
    taken_back = await asyncio.wait_for(layer.receive(lost_tab), 5)
    while taken_back["type"] != "call.taken_back":
        taken_back = await asyncio.wait_for(layer.receive(lost_tab), 5)
    offered = await sync_to_async(Call.objects.values_list("status", "offered_to_id").get)(pk=call.pk)
    await sync_to_async(routing.offer_accept)(agent_id=next_agent.pk, call_id=call.pk)
    next_tab = await layer.new_channel()
    await layer.group_add(f"agent.{next_agent.pk}", next_tab)
    await connect(next_leg, next_agent.pk, next_tab)
    await asyncio.sleep(settings.AGENT_LEG_GRACE_S + 0.5)
    connected = await sync_to_async(Call.objects.values_list("status", "agent_id").get)(pk=call.pk)
    customer_left = bridge.customer_left.is_set()

    for leg in (customer, first_leg, reloaded_leg, next_leg):
        await leg.close()
    await media.hang_up({"type": "call.hangup", "call_id": call.pk})
    assert after_reload == ("connected", lost.pk)
    assert (taken_back["call_id"], offered) == (call.pk, ("offered", next_agent.pk))
    assert (connected, customer_left) == (("connected", next_agent.pk), False)
    assert await sync_to_async(status_of)(lost) == "away"


@pytest.mark.django_db(transaction=True)
async def test_the_agents_open_tab_is_told_the_call_was_taken_back_and_that_they_are_away(
    queue, number, make_agent
):
    from agents.tests.test_consumers import open_socket

    lost = await sync_to_async(make_agent)(status=Agent.Status.ON_CALL)
    call = await sync_to_async(connected_call)(queue=queue, number=number, agent=lost)
    colleague = await sync_to_async(make_agent)(status=Agent.Status.AWAY)  # same queue, another agent
    communicator, colleagues_tab = await open_socket(lost.user), await open_socket(colleague.user)
    for tab in (communicator, colleagues_tab):
        await tab.connect()
        while not await tab.receive_nothing(timeout=0.3):  # presence and the call, on connect
            await tab.receive_json_from()

    await sync_to_async(routing.call_agent_lost)(call_id=call.pk, agent_id=lost.pk)
    frames = [await communicator.receive_json_from(timeout=2) for _ in range(2)]
    colleagues_frames = []
    while not await colleagues_tab.receive_nothing(timeout=0.5):
        colleagues_frames.append(await colleagues_tab.receive_json_from())
    for tab in (communicator, colleagues_tab):
        await tab.disconnect()

    assert {"type": "call.taken_back", "call_id": call.pk, "agent_id": lost.pk} in frames
    assert any(frame["type"] == "agent.status" and frame["status"] == "away" for frame in frames)
    assert [
        frame for frame in colleagues_frames if frame["type"] == "call.taken_back"
    ] == []  # its agent's only


@pytest.mark.django_db(transaction=True)
async def test_a_hand_over_that_fails_is_tried_again_after_another_grace(tmp_path, settings, monkeypatch):
    """The database out of reach when the agent's grace runs out: the media process tries again."""
    settings.AGENT_LEG_GRACE_S = 0.2
    tries = []

    def call_agent_lost(*, call_id: int, agent_id: int) -> str:
        tries.append((call_id, agent_id))
        if len(tries) == 1:
            raise ConnectionError("the database is restarting")
        return "requeued"

    monkeypatch.setattr(routing, "call_agent_lost", call_agent_lost)
    media = CallMedia(process=MediaProcess(handlers={}), spool_dir=tmp_path)
    bridge = CallBridge(call_id="5", recording_path=tmp_path / "call-5.ogg", notice=None, hold=None)
    media.bridges[5], media.agent_ids[5] = bridge, 8
    watching = asyncio.ensure_future(media._watch_agent(5, bridge))

    bridge.agent_left.set()  # the agent's leg left, and no leg comes back
    await asyncio.sleep(1.0)
    watching.cancel()
    await bridge.close()

    assert tries == [(5, 8), (5, 8)]
