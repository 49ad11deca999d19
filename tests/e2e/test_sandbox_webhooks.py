"""The sandbox delivers to the product over real HTTP, with Meta's habits: reordering and duplicates."""

import time

import pytest
from django.conf import settings

from whatsapp.models import WebhookDelivery, WebhookEvent
from whatsapp.sandbox.server import SandboxThread
from whatsapp.sandbox.webhooks import DeliveryHabits

pytestmark = pytest.mark.e2e
NUMBER_ID = "5000001"


def wait_for(predicate, timeout_s: float = 15.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_reordered_and_duplicated_deliveries_have_one_effect(live_server_url, settings_for_media):
    thread = SandboxThread(
        webhook_url=f"{live_server_url}/webhooks/whatsapp/",
        app_secret=settings.WHATSAPP_APP_SECRET,
        token="e2e-token",
        habits=DeliveryHabits(duplicate_probability=1.0, seed=7),
    )
    with thread as sandbox:
        thread.call(
            sandbox.add_number,
            phone_number_id=NUMBER_ID,
            waba_id="6000001",
            display_phone_number="+44 20 7946 0456",
        )
        customer = thread.call(sandbox.add_customer, wa_id="447700900200", name="Tomas Silva")
        sandbox.sender.hold()
        placed = thread.run(customer.place_call, NUMBER_ID)
        thread.run(customer.hang_up, placed.call)
        released = thread.run(sandbox.sender.release, reverse=True)
        thread.call(sandbox.sender.redeliver, released[-1])
        thread.run(sandbox.sender.drain)

    wait_for(lambda: WebhookDelivery.objects.count() == 5)
    events = list(WebhookEvent.objects.order_by("received_at", "pk"))
    assert [delivery.status_code for delivery in released] == [200, 200]
    assert [event.kind for event in events] == ["call.terminate", "call.connect"]
    assert {event.idempotency_key for event in events} == {
        f"call:{placed.call.call_id}:terminate",
        f"call:{placed.call.call_id}:connect",
    }
    assert sorted(WebhookDelivery.objects.values_list("duplicate_count", flat=True)) == [0, 0, 1, 1, 1]
