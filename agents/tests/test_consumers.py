import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.test import Client

from agents.models import Agent, AgentStatusEvent
from agents.tests.factories import AgentFactory, UserFactory
from config.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


async def open_socket(user=None, origin: bytes = b"http://127.0.0.1:8000") -> WebsocketCommunicator:
    headers = [(b"origin", origin), (b"host", b"127.0.0.1:8000")]
    if user is not None:
        cookie = await sync_to_async(_session_cookie)(user)
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(application, "/ws/agent/", headers=headers)


async def test_agent_socket_uses_the_redis_channel_layer():
    assert isinstance(get_channel_layer(), RedisChannelLayer)


async def test_a_ring_goes_to_the_browser_without_a_detour_through_the_sync_thread(monkeypatch):
    # Channels would first close stale database connections in the process's one sync thread,
    # and wait for it, before handing each message to the consumer (core.consumers).
    detours = []

    async def close_old_connections():
        detours.append("sync thread")

    monkeypatch.setattr("channels.consumer.aclose_old_connections", close_old_connections)
    agent = await sync_to_async(AgentFactory)(status=Agent.Status.AVAILABLE)
    communicator = await open_socket(agent.user)
    await communicator.connect()
    await communicator.receive_json_from(timeout=2)  # presence

    frames = [{"type": "agent.status", "status": "ringing"}, {"type": "call.offered", "call_id": 7}]
    await get_channel_layer().group_send(agent.group_name, {"type": "agent.frames", "frames": frames})

    assert [await communicator.receive_json_from(timeout=2) for _ in frames] == frames
    assert detours == []
    await communicator.disconnect()


async def test_agent_socket_refuses_anonymous():
    communicator = await open_socket()

    connected, _ = await communicator.connect()

    assert connected is False
    await communicator.disconnect()  # the refused consumer ends before the test's loop closes


async def test_agent_socket_refuses_user_without_agent_profile():
    user = await sync_to_async(UserFactory)()
    communicator = await open_socket(user)

    connected, _ = await communicator.connect()

    assert connected is False
    await communicator.disconnect()  # the refused consumer ends before the test's loop closes


async def test_agent_socket_refuses_foreign_origin():
    agent = await sync_to_async(AgentFactory)()
    communicator = await open_socket(agent.user, origin=b"https://evil.example")

    connected, _ = await communicator.connect()

    assert connected is False


async def test_agent_socket_sends_presence_on_connect():
    agent = await sync_to_async(AgentFactory)(status=Agent.Status.AWAY)
    communicator = await open_socket(agent.user)

    connected, _ = await communicator.connect()
    frame = await communicator.receive_json_from(timeout=2)

    assert connected is True
    assert frame["type"] == "agent.status"
    assert frame["agent_id"] == agent.pk
    assert frame["status"] == "away"
    await communicator.disconnect()


async def test_presence_set_reaches_every_tab_of_the_agent():
    agent = await sync_to_async(AgentFactory)(status=Agent.Status.OFFLINE)
    first_tab = await open_socket(agent.user)
    second_tab = await open_socket(agent.user)
    await first_tab.connect()
    await second_tab.connect()
    await first_tab.receive_json_from(timeout=2)
    await second_tab.receive_json_from(timeout=2)

    await first_tab.send_json_to({"type": "presence.set", "status": "available"})
    first_frame = await first_tab.receive_json_from(timeout=2)
    second_frame = await second_tab.receive_json_from(timeout=2)

    assert first_frame["status"] == second_frame["status"] == "available"
    await sync_to_async(agent.refresh_from_db)()
    assert agent.status == Agent.Status.AVAILABLE
    await first_tab.disconnect()
    await second_tab.disconnect()


async def test_presence_is_private_to_the_agent():
    agent, other = await sync_to_async(AgentFactory.create_batch)(2)
    agent_tab = await open_socket(agent.user)
    other_tab = await open_socket(other.user)
    await agent_tab.connect()
    await other_tab.connect()
    await agent_tab.receive_json_from(timeout=2)
    await other_tab.receive_json_from(timeout=2)

    await agent_tab.send_json_to({"type": "presence.set", "status": "available"})
    await agent_tab.receive_json_from(timeout=2)

    assert await other_tab.receive_nothing(timeout=0.3) is True
    await agent_tab.disconnect()
    await other_tab.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_frame"),
        (json.dumps(["presence.set"]), "bad_frame"),
        (json.dumps({"status": "available"}), "bad_frame"),
        (json.dumps({"type": "presence.set"}), "invalid_status"),
        (json.dumps({"type": "presence.set", "status": "on_call"}), "invalid_status"),
        (json.dumps({"type": "presence.set", "status": ["available"]}), "invalid_status"),
        (json.dumps({"type": "call.steal", "call_id": 1}), "unknown_type"),
    ],
)
async def test_bad_frames_get_an_error_and_change_nothing(frame, code):
    agent = await sync_to_async(AgentFactory)(status=Agent.Status.AWAY)
    communicator = await open_socket(agent.user)
    await communicator.connect()
    await communicator.receive_json_from(timeout=2)

    await communicator.send_to(text_data=frame)
    reply = await communicator.receive_json_from(timeout=2)

    assert reply["type"] == "error"
    assert reply["code"] == code
    await sync_to_async(agent.refresh_from_db)()
    assert agent.status == Agent.Status.AWAY
    assert await sync_to_async(AgentStatusEvent.objects.count)() == 0
    await communicator.disconnect()


async def test_binary_frame_gets_an_error():
    agent = await sync_to_async(AgentFactory)()
    communicator = await open_socket(agent.user)
    await communicator.connect()
    await communicator.receive_json_from(timeout=2)

    await communicator.send_to(bytes_data=b"\x00\x01")
    reply = await asyncio.wait_for(communicator.receive_json_from(), 2)

    assert reply["code"] == "bad_frame"
    await communicator.disconnect()


async def test_agent_goes_offline_only_when_the_last_tab_closes(settings):
    from agents.services import agent_offline_if_gone

    settings.AGENT_DISCONNECT_GRACE_S = 0  # the check runs as the task does, once the grace is over
    agent = await sync_to_async(AgentFactory)(status=Agent.Status.AVAILABLE)
    first_tab = await open_socket(agent.user)
    second_tab = await open_socket(agent.user)
    await first_tab.connect()
    await second_tab.connect()

    await first_tab.disconnect()
    while_one_open = await sync_to_async(agent_offline_if_gone)(agent_id=agent.pk)
    await second_tab.disconnect()
    when_all_closed = await sync_to_async(agent_offline_if_gone)(agent_id=agent.pk)

    await sync_to_async(agent.refresh_from_db)()
    assert (while_one_open, when_all_closed) == (False, True)
    assert agent.status == Agent.Status.OFFLINE
