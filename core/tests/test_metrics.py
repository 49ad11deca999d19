"""/metrics: what an operator watches, for a monitoring system with the metrics token only."""

import json
import re

import httpx
import pytest
import redis
from django.test import Client

from agents.models import Agent
from agents.tests.factories import AgentFactory, QueueFactory
from calls.media import HEARTBEAT_KEY_PREFIX
from calls.models import Call
from calls.tests.factories import CallFactory
from core.metrics import GRAPH_API_ERRORS, WEBHOOK_ACK_SECONDS
from whatsapp.client import GraphClient
from whatsapp.errors import GraphAPIError
from whatsapp.models import WebhookEvent
from whatsapp.tests import payloads
from whatsapp.tests.factories import BusinessNumberFactory
from whatsapp.tests.test_asgi import post
from whatsapp.tests.test_intake import body_of

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "metrics-token-for-the-tests"


@pytest.fixture
def scrape(settings):
    settings.METRICS_TOKEN = TOKEN

    def scrape() -> dict[str, float]:
        response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain")
        return {
            name: float(value)
            for name, value in re.findall(r"^(\S+) (\S+)$", response.content.decode(), flags=re.MULTILINE)
        }

    return scrape


@pytest.mark.parametrize(
    ("token_set", "authorization", "who"),
    [
        ("", f"Bearer {TOKEN}", None),  # no token set: nobody
        (TOKEN, "", None),
        (TOKEN, "Bearer wrong", None),
        (TOKEN, f"Basic {TOKEN}", None),
        (TOKEN, "", "superuser"),  # a session is not a token, a superuser's included
    ],
)
def test_metrics_are_refused_without_the_token(settings, django_user_model, token_set, authorization, who):
    settings.METRICS_TOKEN = token_set
    client = Client()
    if who:
        client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw"))

    response = client.get("/metrics", HTTP_AUTHORIZATION=authorization)

    assert response.status_code == 403
    assert b"switchboard_" not in response.content


def test_the_floor_as_it_is_now(scrape, settings):
    number = BusinessNumberFactory()
    queue = QueueFactory(name="Care")
    queue.business_numbers.add(number)
    CallFactory(queue=queue, business_number=number, status=Call.Status.QUEUED)
    CallFactory(queue=queue, business_number=number, status=Call.Status.QUEUED)
    AgentFactory(status=Agent.Status.AVAILABLE)
    AgentFactory(status=Agent.Status.ON_CALL)
    heartbeat = redis.Redis.from_url(settings.REDIS_URL)
    heartbeat.set(HEARTBEAT_KEY_PREFIX + "media.metrics!1", json.dumps({"calls": 3, "cpu_s": 12.5}), ex=30)
    settings.WEBHOOK_HANDLE_IN_WORKER = True  # a campaign's status waits for the worker
    post(body_of(payloads.message_status("delivered", "wamid.metrics")))

    figures = scrape()

    assert figures['switchboard_queue_calls_waiting{queue="Care"}'] == 2
    assert figures['switchboard_agents{state="available"}'] == 1
    assert figures['switchboard_agents{state="on_call"}'] == 1
    assert figures['switchboard_calls_live{state="queued"}'] == 2
    assert 'switchboard_calls_live{state="ended"}' not in figures
    assert figures['switchboard_webhook_events{state="queued"}'] == 1
    assert WebhookEvent.objects.get(status=WebhookEvent.Status.QUEUED).kind == "message.status"
    assert figures["switchboard_webhook_oldest_queued_seconds"] >= 0
    assert figures['switchboard_recordings{stage="queued"}'] == 0
    assert figures["switchboard_media_processes"] >= 1
    assert figures['switchboard_media_calls{process="media.metrics!1"}'] == 3
    assert figures['switchboard_media_cpu_seconds_total{process="media.metrics!1"}'] == 12.5
    heartbeat.delete(HEARTBEAT_KEY_PREFIX + "media.metrics!1")


def test_answers_and_graph_api_errors_counted_in_any_process_are_read_by_every_scrape(scrape):
    WEBHOOK_ACK_SECONDS.flush()  # what earlier tests left to add
    GRAPH_API_ERRORS.flush()
    before = scrape()

    post(body_of(payloads.message_status("delivered", "wamid.metrics-ack")))
    WEBHOOK_ACK_SECONDS.flush()
    answer = httpx.Response(400, json={"error": {"code": 131047, "message": "Re-engagement message"}})
    graph = GraphClient(transport=httpx.MockTransport(lambda request: answer), max_retries=0)
    with graph, pytest.raises(GraphAPIError):
        graph.message_send_text(phone_number_id="1", to="447700900000", body="Hello")
    GRAPH_API_ERRORS.flush()
    after = scrape()

    def grown(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    assert grown("switchboard_webhook_ack_seconds_count") == 1
    assert grown('switchboard_webhook_ack_seconds_bucket{le="+Inf"}') == 1
    assert grown("switchboard_webhook_ack_seconds_sum") > 0
    assert grown('switchboard_graph_api_errors_total{code="131047"}') == 1
