"""Outgoing webhooks against a real local receiver: each delivery signed (and checked the way a CRM
checks it), retried after a 500, delivered once per event id, given up after its attempts."""

import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from calls.models import Call
from calls.services import call_end
from calls.tests.factories import CallFactory
from integrations import webhooks
from integrations.models import EventDelivery, OutgoingEvent, WebhookSubscription
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db

SECRET = "whsec-test-0123456789"


class Receiver:
    """A CRM's endpoint: verifies each delivery's signature and freshness, keeps the first of each
    event id, and answers with the statuses it is told, in turn."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses, self.received, self.events = list(statuses), [], {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status == 200 and receiver.is_authentic(self.headers["X-Switchboard-Signature"], body):
                    receiver.events.setdefault(self.headers["Idempotency-Key"], json.loads(body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/switchboard"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def is_authentic(header: str, body: bytes) -> bool:
        parts = dict(part.split("=", 1) for part in header.split(","))
        expected = hmac.new(SECRET.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) < 300


@pytest.fixture
def receiver():
    made = []

    def make(statuses: list[int]) -> Receiver:
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for each in made:
        each.server.shutdown()


def subscribe(url: str, number, kinds: list[str]) -> WebhookSubscription:
    subscription = WebhookSubscription.objects.create(name="CRM", url=url, secret=SECRET, event_types=kinds)
    subscription.business_numbers.add(number)
    webhooks.subscriptions_changed()
    return subscription


def ended_call(number, django_capture_on_commit_callbacks) -> Call:
    call = CallFactory(business_number=number, status=Call.Status.CONNECTED, connected_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        call_end(call_id=call.pk, reason=Call.EndReason.COMPLETED, detail="Meta: completed")
    return call


def attempt_now(delivery: EventDelivery) -> str:
    EventDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    return webhooks.delivery_attempt(delivery_id=delivery.pk)


def test_a_delivery_is_signed_retried_after_a_500_and_kept_once(receiver, django_capture_on_commit_callbacks):
    number = BusinessNumberFactory()
    crm = receiver([500, 200])
    subscribe(crm.url, number, ["call.ended"])

    call = ended_call(number, django_capture_on_commit_callbacks)
    delivery = EventDelivery.objects.get()
    first = webhooks.delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    waited = delivery.next_attempt_at - timezone.now()
    second = attempt_now(delivery)
    third = attempt_now(delivery)

    assert (first, second, third) == ("pending", "delivered", "")  # delivered: not sent again
    assert timedelta(seconds=5) < waited <= timedelta(seconds=10)  # backoff before the retry
    assert len(crm.received) == 2
    assert {headers["Idempotency-Key"] for headers, _ in crm.received} == {str(delivery.event_id)}
    assert all(
        Receiver.is_authentic(headers["X-Switchboard-Signature"], body) for headers, body in crm.received
    )
    [event] = crm.events.values()
    assert (event["type"], event["data"]["call_id"], event["data"]["end_reason"]) == (
        "call.ended",
        call.pk,
        "completed",
    )
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_status_code, delivery.delivered_at is not None) == (2, 200, True)


def test_a_tampered_or_stale_delivery_fails_the_receivers_check():
    body = b'{"id":"1"}'
    fresh = webhooks.signature(secret=SECRET, timestamp=int(time.time()), body=body)
    stale = webhooks.signature(secret=SECRET, timestamp=int(time.time()) - 600, body=body)

    assert Receiver.is_authentic(fresh, body) is True
    assert Receiver.is_authentic(fresh, b'{"id":"2"}') is False
    assert Receiver.is_authentic(stale, body) is False


def test_only_the_kinds_and_numbers_subscribed_are_delivered(receiver, django_capture_on_commit_callbacks):
    ours, theirs = BusinessNumberFactory(), BusinessNumberFactory()
    crm = receiver([])
    subscribe(crm.url, ours, ["call.connected"])

    ended_call(ours, django_capture_on_commit_callbacks)  # call.ended: not subscribed
    ended_call(theirs, django_capture_on_commit_callbacks)

    assert not OutgoingEvent.objects.exists()
    assert not EventDelivery.objects.exists()


def test_a_delivery_gives_up_after_its_attempts(receiver, django_capture_on_commit_callbacks):
    number = BusinessNumberFactory()
    crm = receiver([503] * webhooks.MAX_ATTEMPTS)
    subscribe(crm.url, number, ["call.ended"])
    ended_call(number, django_capture_on_commit_callbacks)
    delivery = EventDelivery.objects.get()

    outcomes = [attempt_now(delivery) for _ in range(webhooks.MAX_ATTEMPTS)]

    assert outcomes == ["pending"] * (webhooks.MAX_ATTEMPTS - 1) + ["failed"]
    assert EventDelivery.objects.get().last_error == "HTTP 503"
    assert webhooks.deliveries_due() == []


def test_an_unreachable_endpoint_is_tried_again_by_the_sweep(django_capture_on_commit_callbacks):
    number = BusinessNumberFactory()
    subscribe("http://127.0.0.1:9/nothing-listens", number, ["call.ended"])
    ended_call(number, django_capture_on_commit_callbacks)
    delivery = EventDelivery.objects.get()

    status = webhooks.delivery_attempt(delivery_id=delivery.pk)
    EventDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())

    assert status == "pending"
    assert EventDelivery.objects.get().last_error.startswith("ConnectError")
    assert webhooks.deliveries_due() == [delivery.pk]
