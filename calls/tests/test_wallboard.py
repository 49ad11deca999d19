from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.utils import timezone

from agents.models import Agent
from agents.tests.factories import AgentFactory, UserFactory
from calls.models import Call
from calls.selectors import wallboard_snapshot
from calls.services import InboundCall, call_create_inbound
from calls.tests.factories import CallFactory
from config.asgi import application


@pytest.mark.django_db
def test_snapshot_counts_waiting_calls_longest_wait_and_agents(queue, number):
    started = timezone.now()
    CallFactory(queue=queue, business_number=number, queued_at=started - timedelta(seconds=42))
    CallFactory(queue=queue, business_number=number, queued_at=timezone.now() - timedelta(seconds=5))
    CallFactory(queue=queue, business_number=number, status=Call.Status.ENDED)
    AgentFactory(status=Agent.Status.AWAY)
    AgentFactory(status=Agent.Status.AWAY)

    snapshot = wallboard_snapshot()
    elapsed_s = (timezone.now() - started).total_seconds()

    [tile] = snapshot["queues"]
    assert (tile["name"], tile["waiting"], tile["ringing"], tile["talking"]) == ("Care", 2, 0, 0)
    assert 42 <= tile["longest_wait_s"] <= 42 + elapsed_s + 0.5
    assert {agents["status"]: agents["count"] for agents in snapshot["agents"]}["away"] == 2


@pytest.mark.django_db
def test_wallboard_page_for_supervisors_only(client):
    client.force_login(UserFactory(is_staff=False))
    refused = client.get("/wallboard/")
    client.force_login(UserFactory(is_staff=True))
    shown = client.get("/wallboard/")

    assert refused.status_code == 302
    assert shown.status_code == 200
    assert "calls/wallboard.js" in shown.content.decode()


def _cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


async def open_wallboard(user) -> WebsocketCommunicator:
    cookie = await sync_to_async(_cookie)(user)
    headers = [
        (b"origin", b"http://127.0.0.1:8000"),
        (b"host", b"127.0.0.1:8000"),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]
    return WebsocketCommunicator(application, "/ws/wallboard/", headers=headers)


@pytest.mark.django_db(transaction=True)
async def test_wallboard_socket_refuses_agents():
    agent = await sync_to_async(AgentFactory)()

    connected, _ = await (await open_wallboard(agent.user)).connect()

    assert connected is False


@pytest.mark.django_db(transaction=True)
async def test_wallboard_updates_live_when_a_call_queues(queue, number):
    supervisor = await sync_to_async(UserFactory)(is_staff=True)
    communicator = await open_wallboard(supervisor)
    await communicator.connect()
    first = await communicator.receive_json_from(timeout=2)
    inbound = InboundCall(
        wa_call_id="wacid.wallboard",
        phone_number_id=number.phone_number_id,
        from_number="447700900123",
        contact_name="Ana",
        sdp_offer="v=0",
    )

    await sync_to_async(call_create_inbound)(inbound=inbound, queue_id=queue.pk, is_open=True)
    update = await communicator.receive_json_from(timeout=2)

    assert first["queues"][0]["waiting"] == 0
    assert update["queues"][0]["waiting"] == 1
    await communicator.disconnect()
