"""The agent's browser over its WebSocket: rung for a call, accepts or declines it."""

import pytest
from asgiref.sync import sync_to_async

from agents.models import Agent, QueueMembership
from agents.tests.factories import AgentFactory, QueueFactory
from agents.tests.test_consumers import open_socket
from calls import routing
from calls.models import Call, LiveCallCount
from calls.tests.factories import CallFactory, ContactFactory
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db(transaction=True)


def make_call_and_agent():
    number = BusinessNumberFactory()
    queue = QueueFactory(name="Billing")
    queue.business_numbers.add(number)
    agent = AgentFactory(status=Agent.Status.AVAILABLE)
    QueueMembership.objects.create(queue=queue, agent=agent)
    LiveCallCount.objects.create(business_number=number, direction="inbound", live=1)
    contact = ContactFactory(wa_id="5511987654321", name="Lucia Santos", country="BR")
    call = CallFactory(
        queue=queue,
        business_number=number,
        contact=contact,
        status=Call.Status.QUEUED,
        media_channel="media.test!1",
    )
    return agent, call


async def ring(agent, call):
    communicator = await open_socket(agent.user)
    await communicator.connect()
    await communicator.receive_json_from(timeout=2)  # presence on connect
    await sync_to_async(routing.call_waits)(call_id=call.pk)
    frames = [await communicator.receive_json_from(timeout=2) for _ in range(2)]
    return communicator, frames


async def test_agent_is_rung_with_the_callers_details():
    agent, call = await sync_to_async(make_call_and_agent)()

    communicator, frames = await ring(agent, call)

    offered = next(frame for frame in frames if frame["type"] == "call.offered")
    assert {key: offered[key] for key in ("call_id", "caller_name", "caller_number", "country", "queue")} == {
        "call_id": call.pk,
        "caller_name": "Lucia Santos",
        "caller_number": "+5511987654321",
        "country": "BR",
        "queue": "Billing",
    }
    assert offered["ring_timeout_s"] == 20
    assert {"type": "agent.status", "status": "ringing"}.items() <= next(
        frame for frame in frames if frame["type"] == "agent.status"
    ).items()
    await communicator.disconnect()


async def test_agent_accepts_over_the_socket():
    agent, call = await sync_to_async(make_call_and_agent)()
    communicator, _ = await ring(agent, call)

    await communicator.send_json_to({"type": "call.accept", "call_id": call.pk})
    frames = [await communicator.receive_json_from(timeout=2) for _ in range(3)]

    assert {"type": "call.accept.result", "call_id": call.pk, "is_won": True} in frames
    assert {"type": "call.taken", "call_id": call.pk, "agent_id": agent.pk} in frames
    await sync_to_async(call.refresh_from_db)()
    assert (call.status, call.agent_id) == ("connected", agent.pk)
    await communicator.disconnect()


async def test_agent_declines_over_the_socket():
    agent, call = await sync_to_async(make_call_and_agent)()
    communicator, _ = await ring(agent, call)

    await communicator.send_json_to({"type": "call.decline", "call_id": call.pk})
    frames = [await communicator.receive_json_from(timeout=2) for _ in range(3)]

    assert {"type": "call.decline.result", "call_id": call.pk, "is_done": True} in frames
    assert {"type": "call.withdrawn", "call_id": call.pk, "agent_id": agent.pk} in frames
    assert await communicator.receive_nothing(timeout=0.3) is True  # not rung again for the call it declined
    await communicator.disconnect()


@pytest.mark.parametrize("call_id", ["7", None, -1, True, 1.5])
async def test_call_frames_need_a_call_id(call_id):
    agent = await sync_to_async(AgentFactory)()
    communicator = await open_socket(agent.user)
    await communicator.connect()
    await communicator.receive_json_from(timeout=2)

    await communicator.send_json_to({"type": "call.accept", "call_id": call_id})
    reply = await communicator.receive_json_from(timeout=2)

    assert (reply["type"], reply["code"]) == ("error", "invalid_call")
    await communicator.disconnect()


async def test_accepting_a_call_not_offered_to_you_loses():
    _, call = await sync_to_async(make_call_and_agent)()
    other = await sync_to_async(AgentFactory)()
    communicator = await open_socket(other.user)
    await communicator.connect()
    await communicator.receive_json_from(timeout=2)
    await sync_to_async(routing.call_waits)(call_id=call.pk)

    await communicator.send_json_to({"type": "call.accept", "call_id": call.pk})
    reply = await communicator.receive_json_from(timeout=2)

    assert reply == {"type": "call.accept.result", "call_id": call.pk, "is_won": False}
    await communicator.disconnect()


async def accepted(agent, call):
    communicator, _ = await ring(agent, call)
    await communicator.send_json_to({"type": "call.accept", "call_id": call.pk})
    for _ in range(3):
        await communicator.receive_json_from(timeout=2)
    return communicator


async def test_hold_and_mute_go_to_the_media_process_holding_the_call():
    from channels.layers import get_channel_layer

    agent, call = await sync_to_async(make_call_and_agent)()
    communicator = await accepted(agent, call)
    layer = get_channel_layer()
    media_channel = await layer.new_channel()
    await sync_to_async(Call.objects.filter(pk=call.pk).update)(media_channel=media_channel)

    await communicator.send_json_to({"type": "call.hold", "call_id": call.pk, "is_on": True})
    to_media = await layer.receive(media_channel)
    echoed = await communicator.receive_json_from(timeout=2)
    await communicator.send_json_to({"type": "call.mute", "call_id": call.pk, "is_on": "yes"})
    refused = await communicator.receive_json_from(timeout=2)

    assert to_media == {"type": "call.hold", "call_id": call.pk, "is_on": True}
    assert echoed == {"type": "call.hold.changed", "call_id": call.pk, "is_on": True}
    assert (refused["type"], refused["code"]) == ("error", "invalid_switch")
    await communicator.disconnect()


async def test_an_offer_before_any_media_process_took_the_call_is_refused_as_not_ready():
    agent, call = await sync_to_async(make_call_and_agent)()
    await sync_to_async(Call.objects.filter(pk=call.pk).update)(media_channel="")
    communicator = await accepted(agent, call)

    await communicator.send_json_to({"type": "call.media_offer", "call_id": call.pk, "sdp": "v=0\r\n"})
    refused = await communicator.receive_json_from(timeout=2)

    assert (refused["type"], refused["code"]) == ("error", "media_not_ready")  # the softphone sends it again
    await communicator.disconnect()


async def test_agent_hangs_up():
    agent, call = await sync_to_async(make_call_and_agent)()
    communicator = await accepted(agent, call)

    await communicator.send_json_to({"type": "call.hangup", "call_id": call.pk})
    frames = [await communicator.receive_json_from(timeout=2) for _ in range(3)]

    assert {"type": "call.hangup.result", "call_id": call.pk, "is_done": True} in frames
    ended = next(frame for frame in frames if frame["type"] == "call.ended")
    assert (ended["call_id"], ended["agent_id"]) == (call.pk, agent.pk)
    assert ["resolved", "Resolved"] in ended["dispositions"]
    await sync_to_async(call.refresh_from_db)()
    assert (call.status, call.end_reason, call.end_detail) == ("ended", "completed", "the agent hung up")
    await communicator.disconnect()


async def test_media_offer_for_a_call_not_yours_refused():
    agent, call = await sync_to_async(make_call_and_agent)()
    communicator, _ = await ring(agent, call)  # rung, not yet accepted

    await communicator.send_json_to({"type": "call.media_offer", "call_id": call.pk, "sdp": "v=0\r\n"})
    frames = [await communicator.receive_json_from(timeout=2) for _ in range(1)]

    assert (frames[0]["type"], frames[0]["code"]) == ("error", "not_your_call")
    await communicator.disconnect()


async def test_agent_files_the_call_and_is_available_again():
    agent, call = await sync_to_async(make_call_and_agent)()
    communicator = await accepted(agent, call)
    await communicator.send_json_to({"type": "call.hangup", "call_id": call.pk})
    for _ in range(3):
        await communicator.receive_json_from(timeout=2)

    await communicator.send_json_to({"type": "call.wrap_up", "call_id": call.pk, "disposition": "nonsense"})
    refused = await communicator.receive_json_from(timeout=2)
    await communicator.send_json_to(
        {"type": "call.wrap_up", "call_id": call.pk, "disposition": "resolved", "notes": "Sorted the refund."}
    )
    frames = [await communicator.receive_json_from(timeout=2) for _ in range(3)]

    await sync_to_async(call.refresh_from_db)()
    await sync_to_async(agent.refresh_from_db)()
    assert (refused["type"], refused["code"]) == ("error", "invalid_wrap_up")
    assert {"type": "call.wrap_up.result", "call_id": call.pk, "is_filed": True} in frames
    assert (call.disposition, call.wrap_up_notes, agent.status) == (
        "resolved",
        "Sorted the refund.",
        "available",
    )
    await communicator.disconnect()


async def reconnect(agent):
    """A tab of the agent (re)opens: presence, then whatever the agent is in the middle of."""
    communicator = await open_socket(agent.user)
    await communicator.connect()
    presence = await communicator.receive_json_from(timeout=2)
    frames = []
    while not await communicator.receive_nothing(timeout=0.3):
        frames.append(await communicator.receive_json_from(timeout=2))
    await communicator.disconnect()
    return presence, frames


async def test_a_reloaded_tab_is_shown_the_ring_the_call_and_the_wrap_up_it_was_in():
    agent, call = await sync_to_async(make_call_and_agent)()
    await sync_to_async(routing.call_waits)(call_id=call.pk)

    _, while_ringing = await reconnect(agent)
    await sync_to_async(routing.offer_accept)(agent_id=agent.pk, call_id=call.pk)
    _, while_talking = await reconnect(agent)
    await sync_to_async(routing.call_finish)(call_id=call.pk, reason=Call.EndReason.COMPLETED)
    presence, while_filing = await reconnect(agent)
    await sync_to_async(routing.call_wrap_up)(
        agent_id=agent.pk, call_id=call.pk, disposition="resolved", notes=""
    )
    _, when_done = await reconnect(agent)

    [ring_again] = while_ringing
    assert (ring_again["type"], ring_again["call_id"], ring_again["open_tabs"]) == (
        "call.offered",
        call.pk,
        1,
    )
    assert 15 <= ring_again["ring_timeout_s"] <= 20  # what is left of the queue's 20 s
    [resumed] = while_talking
    assert (resumed["type"], resumed["call_id"], resumed["caller"]) == (
        "call.resume",
        call.pk,
        "Lucia Santos",
    )
    assert presence["status"] == "wrap_up"
    [filing] = while_filing
    assert (filing["type"], filing["call_id"]) == ("call.ended", call.pk)
    assert ["resolved", "Resolved"] in [list(choice) for choice in filing["dispositions"]]
    assert when_done == []


async def receive_until(communicator, frame_type: str) -> dict:
    while (frame := await communicator.receive_json_from(timeout=2))["type"] != frame_type:
        pass
    return frame


async def test_what_the_agent_types_in_wrap_up_reaches_every_tab_and_a_reloaded_one():
    agent, call = await sync_to_async(make_call_and_agent)()
    first_tab = await accepted(agent, call)
    second_tab = await open_socket(agent.user)
    await second_tab.connect()
    await sync_to_async(routing.call_finish)(call_id=call.pk, reason=Call.EndReason.COMPLETED)
    while not await second_tab.receive_nothing(timeout=0.3):
        await second_tab.receive_json_from(timeout=2)

    await first_tab.send_json_to({"type": "presence.set", "status": "away"})
    refused = await receive_until(first_tab, "error")
    draft = {"call_id": call.pk, "disposition": "follow_up", "notes": "Wants a refund for order 4521."}
    await first_tab.send_json_to({"type": "call.wrap_up_draft", **draft})
    mirrored = await second_tab.receive_json_from(timeout=2)
    presence, reloaded = await reconnect(agent)
    await first_tab.send_json_to(
        {"type": "call.wrap_up", "call_id": call.pk, "disposition": "follow_up", "notes": draft["notes"],
         "next_status": "away"}
    )  # fmt: skip
    filed = await receive_until(second_tab, "call.filed")

    await sync_to_async(call.refresh_from_db)()
    await sync_to_async(agent.refresh_from_db)()
    assert refused["code"] == "wrap_up_unfiled"
    assert mirrored == {"type": "call.wrap_up_draft", **draft}
    assert presence["status"] == "wrap_up"
    assert [(frame["type"], frame["draft"]) for frame in reloaded] == [
        ("call.ended", {"disposition": "follow_up", "notes": "Wants a refund for order 4521."})
    ]
    assert (filed["call_id"], filed["is_timed_out"]) == (call.pk, False)
    assert (call.disposition, call.wrap_up_notes, agent.status) == ("follow_up", draft["notes"], "away")
    await first_tab.disconnect()
    await second_tab.disconnect()
