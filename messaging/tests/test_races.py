"""A message's statuses are never lost to the race between Meta's webhook and the send's own answer."""

import copy
import json
import threading
import time
from datetime import UTC, datetime

import pytest
from django.db import connection, connections

from calls.tests.factories import ContactFactory
from messaging import services
from messaging.models import Message
from whatsapp.services import webhook_delivery_receive
from whatsapp.tests import payloads
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer at a time: no race")
def test_a_status_received_while_the_send_is_being_recorded_is_applied(monkeypatch):
    number = BusinessNumberFactory(phone_number_id=payloads.PHONE_NUMBER_ID, waba_id=payloads.WABA_ID)
    message = Message.objects.create(
        business_number=number, contact=ContactFactory(wa_id="447700900123"), direction="outbound",
        message_type="text", text="Hi", request={"type": "text"}, status="pending", idempotency_key="race",
    )  # fmt: skip
    delivered = copy.deepcopy(payloads.message_status("delivered", "wamid.race", category="utility"))
    delivered["entry"][0]["changes"][0]["value"]["statuses"][0]["timestamp"] = str(
        int(datetime.now(UTC).timestamp())
    )
    send_recorded, status_waits = threading.Event(), threading.Event()
    lock, apply_early = services.transaction_lock, services._apply_early_statuses

    def lock_noting_the_status(key: str) -> None:
        if threading.current_thread().name == "status":
            status_waits.set()  # the status found no message with its id: the send is being recorded
        lock(key)

    def apply_early_once_the_status_came(wa_message_id: str) -> None:
        send_recorded.set()  # the send's answer is written, not committed
        status_waits.wait(timeout=5)
        time.sleep(0.2)  # the webhook's transaction has stored its event meanwhile, uncommitted
        apply_early(wa_message_id)

    monkeypatch.setattr(services, "transaction_lock", lock_noting_the_status)
    monkeypatch.setattr(services, "_apply_early_statuses", apply_early_once_the_status_came)

    def record_the_answer() -> None:
        try:
            services.message_sent(message_id=message.pk, wa_message_id="wamid.race")
        finally:
            connections.close_all()

    def receive_the_status() -> None:
        try:
            send_recorded.wait(timeout=5)
            webhook_delivery_receive(body=json.dumps(delivered).encode())
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=record_the_answer, name="answer"),
        threading.Thread(target=receive_the_status, name="status"),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    message.refresh_from_db()
    assert status_waits.is_set() is True  # the two really met
    assert (message.status, message.wa_message_id) == ("delivered", "wamid.race")
    assert message.delivered_at is not None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer at a time: no race")
def test_two_first_news_of_a_customers_marketing_choice_at_once_end_with_the_newer():
    from messaging.models import MarketingPreference, MarketingPreferenceChange
    from messaging.preferences import marketing_preference_apply

    number = BusinessNumberFactory(phone_number_id=payloads.PHONE_NUMBER_ID, waba_id=payloads.WABA_ID)
    contact = ContactFactory(wa_id="447700900123")
    older, newer = datetime(2026, 1, 1, 12, 0, tzinfo=UTC), datetime(2026, 1, 1, 12, 5, tzinfo=UTC)
    together, failures = threading.Barrier(2), []

    def news(*, is_stopped: bool, at: datetime) -> None:
        try:
            together.wait(timeout=5)
            marketing_preference_apply(
                business_number_id=number.pk, contact_id=contact.pk, is_stopped=is_stopped, at=at,
                source=MarketingPreference.Source.WEBHOOK,
            )  # fmt: skip
        except Exception as error:  # noqa: BLE001 - the test reports whatever a thread met
            failures.append(error)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=news, kwargs={"is_stopped": True, "at": newer}),
        threading.Thread(target=news, kwargs={"is_stopped": False, "at": older}),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert failures == []
    row = MarketingPreference.objects.get()
    assert (row.status, row.since, row.news_at) == ("stopped", newer, newer)
    assert (
        MarketingPreferenceChange.objects.order_by("-at", "-pk").values_list("to_status", flat=True)[0]
        == "stopped"
    )
