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
from calls.selectors import day_hours, sentiment_mix, wallboard_snapshot
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


def at_hour(hour: int, minute: int = 0):
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return start + timedelta(hours=hour, minutes=minute)


@pytest.mark.django_db
def test_the_charts_count_the_days_calls_by_hour_and_how_they_went(queue, number):
    day = at_hour(0)

    def call(hour, minute, **fields):
        started = at_hour(hour, minute)
        fields.setdefault("ended_at", started + timedelta(minutes=3))
        return CallFactory(
            queue=queue, business_number=number, started_at=started, queued_at=started,
            status=Call.Status.ENDED, **fields,
        )  # fmt: skip

    call(9, 5, connected_at=at_hour(9, 5) + timedelta(seconds=10), end_reason="completed")  # within 20 s
    call(9, 40, connected_at=at_hour(9, 40) + timedelta(seconds=45), end_reason="completed")  # late
    call(9, 50, end_reason="abandoned", ended_at=at_hour(9, 50) + timedelta(seconds=30))
    call(14, 0, end_reason="no_agent")
    call(23, 59, end_reason="abandoned", ended_at=at_hour(23, 59) + timedelta(seconds=2))  # a short abandon
    CallFactory(queue=queue, business_number=number, started_at=day - timedelta(minutes=1))  # yesterday
    CallFactory(
        business_number=number,
        direction=Call.Direction.OUTBOUND,
        queue=None,
        queued_at=None,
        started_at=at_hour(9),
        status=Call.Status.ENDED,
    )  # fmt: skip: a business call reaches no queue

    hours = {hour.hour: hour for hour in day_hours(since=day, until=day + timedelta(days=1))}

    assert (hours[9].answered, hours[9].abandoned, hours[9].other) == (2, 1, 0)
    assert hours[9].service_level == pytest.approx(1 / 3)  # one of three within 20 s
    assert (hours[14].total, hours[14].service_level) == (1, 0.0)  # nobody free: counts against it
    assert (hours[23].abandoned, hours[23].service_level) == (1, None)  # a short abandon counts for none
    assert sum(hour.total for hour in hours.values()) == 5 and hours[0].total == 0


@pytest.mark.django_db
def test_the_charts_are_svg_with_each_hour_and_the_sentiment_mix(queue, number):
    from recordings.models import Summary

    started = at_hour(10)
    answered = CallFactory(
        queue=queue, business_number=number, started_at=started, queued_at=started, status=Call.Status.ENDED,
        connected_at=started + timedelta(seconds=5), end_reason="completed",
    )  # fmt: skip
    Summary.objects.create(
        call=answered, paragraph="Sorted.", intent="billing", outcome="resolved", sentiment="negative",
        sentiment_score=-0.4, backend="local",
    )  # fmt: skip

    charts = wallboard_snapshot(with_charts=True)["charts"]

    assert (
        '<rect x="' in charts["calls_svg"]
        and 'data-hour="10" data-part="answered" data-count="1"' in charts["calls_svg"]
    )
    assert 'data-hour="10" data-service-level="1.000"' in charts["service_level_svg"]
    assert 'data-sentiment="negative" data-count="1"' in charts["sentiment_svg"]
    assert charts["service_level_text"] == "100%"
    assert charts["queues"] == {str(queue.pk): "100%"}
    assert sentiment_mix(since=at_hour(0), until=at_hour(0) + timedelta(days=1)) == {"negative": 1}


@pytest.mark.django_db(transaction=True)
async def test_a_burst_of_changes_brings_one_snapshot_and_the_charts_soon_after(queue, number, monkeypatch):
    from channels.layers import get_channel_layer

    # The burst must land within one snapshot's delay: fifty sends through Redis on a busy machine
    # can take longer than the product's quarter second, and then a second snapshot is right.
    monkeypatch.setattr("calls.consumers.SNAPSHOT_DELAY_S", 1.5)
    supervisor = await sync_to_async(UserFactory)(is_staff=True)
    communicator = await open_wallboard(supervisor)
    await communicator.connect()
    await communicator.receive_json_from(timeout=2)
    layer = get_channel_layer()

    for call_id in range(50):
        await layer.group_send("supervisors", {"type": "wallboard.changed", "call_id": call_id})
    first = await communicator.receive_json_from(timeout=4)
    second = await communicator.receive_json_from(timeout=4)

    assert {"charts" in first, "charts" in second} == {True, False}  # the tiles once, the charts once
    assert await communicator.receive_nothing(timeout=0.6)
    await communicator.disconnect()


@pytest.mark.django_db
def test_the_sentiment_chart_counts_only_calls_that_had_a_conversation(queue, number):
    from recordings.models import Summary

    def summarised(sentiment: str, **fields) -> Call:
        started = at_hour(11)
        fields = {"queue": queue, "queued_at": started, **fields}
        call = CallFactory(business_number=number, started_at=started, status=Call.Status.ENDED, **fields)
        Summary.objects.create(
            call=call, paragraph="…", intent="", outcome="no_conversation", sentiment=sentiment,
            sentiment_score=0.5 if sentiment else None, backend="local",
        )  # fmt: skip
        return call

    talked = {"connected_at": at_hour(11, 1), "end_reason": "completed", "talk_seconds": 60}
    summarised("positive", **talked)
    summarised("negative", **talked)
    summarised("positive", **talked, direction=Call.Direction.OUTBOUND, queue=None, queued_at=None)
    # Nobody answered these: a sentiment their summaries were given from the hold audio counts for none.
    for end_reason in ("abandoned", "no_agent", "rejected", "failed"):
        summarised("positive", end_reason=end_reason)
    summarised("negative", end_reason="unanswered", direction=Call.Direction.OUTBOUND, queue=None)
    summarised("", end_reason="abandoned")

    mix = sentiment_mix(since=at_hour(0), until=at_hour(0) + timedelta(days=1))
    chart = wallboard_snapshot(with_charts=True)["charts"]["sentiment_svg"]

    assert mix == {"positive": 2, "negative": 1}
    assert 'data-sentiment="positive" data-count="2"' in chart
    assert 'data-sentiment="negative" data-count="1"' in chart
