import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from whatsapp import dispatch
from whatsapp.events import EVENT_KINDS
from whatsapp.models import WebhookDelivery, WebhookEvent
from whatsapp.services import webhook_delivery_receive
from whatsapp.tests import payloads

RACERS = 8


@pytest.mark.django_db(transaction=True)
def test_same_event_delivered_concurrently_is_handled_once():
    body = json.dumps(payloads.user_call_connect()).encode()
    handled = []
    lock = threading.Lock()
    saved = dict(dispatch._handlers)
    for kind in EVENT_KINDS:

        def record(event):
            with lock:
                handled.append(event.idempotency_key)

        dispatch._handlers[kind] = record
    start = threading.Barrier(RACERS)

    def deliver(_):
        start.wait()
        try:
            return webhook_delivery_receive(body=body).delivery.event_count
        finally:
            connections.close_all()

    try:
        with ThreadPoolExecutor(RACERS) as pool:
            counts = list(pool.map(deliver, range(RACERS)))
    finally:
        dispatch._handlers.clear()
        dispatch._handlers.update(saved)

    assert sorted(counts) == [0] * (RACERS - 1) + [1]
    assert handled == ["call:wacid.ABGGFjFVU2AfAgo6V-Hc5eCgK5Gh:connect"]
    assert WebhookDelivery.objects.count() == RACERS
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.HANDLED
