"""A call's page follows the work after the call over its WebSocket: for those who may see the call."""

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings

from agents.tests.factories import AgentFactory
from agents.tests.test_consumers import _session_cookie  # the agents' socket tests sign in the same way
from calls.tests.factories import CallFactory
from config.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


async def page_socket(user, call_id: int) -> WebsocketCommunicator:
    cookie = await sync_to_async(_session_cookie)(user)
    headers = [
        (b"origin", b"http://127.0.0.1:8000"),
        (b"host", b"127.0.0.1:8000"),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]
    return WebsocketCommunicator(application, f"/ws/calls/{call_id}/", headers=headers)


async def test_the_agent_of_the_call_follows_its_progress_and_summary():
    call = await sync_to_async(CallFactory)(agent=await sync_to_async(AgentFactory)())
    user = await sync_to_async(lambda: call.agent.user)()
    socket = await page_socket(user, call.pk)
    is_connected, _ = await socket.connect()

    progress = {"type": "recording.progress", "call_id": call.pk, "status": "transcribing", "progress": 40}
    await get_channel_layer().group_send(f"call.{call.pk}", progress)
    await get_channel_layer().group_send(f"call.{call.pk}", {"type": "summary.ready", "call_id": call.pk})

    assert is_connected is True
    assert await socket.receive_json_from(timeout=2) == progress
    assert (await socket.receive_json_from(timeout=2))["type"] == "summary.ready"
    await socket.disconnect()


async def test_another_agent_cannot_follow_the_call():
    call = await sync_to_async(CallFactory)(agent=await sync_to_async(AgentFactory)())
    stranger = await sync_to_async(lambda: AgentFactory().user)()
    socket = await page_socket(stranger, call.pk)

    is_connected, _ = await socket.connect()

    assert is_connected is False
    await socket.disconnect()  # the refused consumer ends before the test's loop closes
