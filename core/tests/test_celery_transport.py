"""The worker's broker transport outlives a Redis restart (core.celery_transport)."""

import uuid

import pytest
from django.conf import settings
from kombu import Connection


def lost_connection_with_a_task_in_hand(transport: str):
    """A channel holding a message it has not acknowledged, whose connection to Redis is gone as
    kombu leaves it when Redis restarts: its pool dropped and the transport's client released."""
    connection = Connection(settings.CELERY_BROKER_URL, transport=transport)
    queue = connection.SimpleQueue(f"transport-test-{uuid.uuid4().hex}")
    queue.put({"task": "in hand"})
    queue.get(timeout=5)  # taken, not acknowledged
    channel = queue.channel
    channel._disconnect_pools()
    connection.transport.client = None
    return channel


def test_a_worker_that_loses_redis_with_a_task_in_hand_closes_its_channel_and_reconnects(caplog):
    channel = lost_connection_with_a_task_in_hand(settings.CELERY_BROKER_TRANSPORT)

    channel.close()  # as the worker does before reconnecting; kombu's own transport raises here

    assert "1 unacknowledged task message(s) not put back" in caplog.text


def test_kombus_own_transport_stops_there():
    """Why core.celery_transport exists: should kombu fix this, the subclass can go."""
    channel = lost_connection_with_a_task_in_hand("redis")

    with pytest.raises(AttributeError):
        channel.close()
