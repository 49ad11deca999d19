"""Deliveries other than calls' are stored by the request and handled by the worker in batches.

A campaign's status deliveries must never queue a caller: the request stores them `queued` and
answers, the worker (`webhook_events_handle_queued`) applies them in one transaction per batch, so
that a worker that dies half-way leaves them queued with nothing applied, and each one's effect
happens once.
"""

import datetime
import json

import pytest
from djmoney.money import Money

from calls.models import Call
from calls.tests.factories import ContactFactory
from integrations.webhooks import subscriptions_changed
from messaging.models import Charge, Message, RateCard
from messaging.services import RATE_CARDS_FIXTURE, rate_card_save, rate_cards_load
from whatsapp import services
from whatsapp.models import WebhookEvent
from whatsapp.tests import payloads
from whatsapp.tests.conftest import post_webhook
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def in_worker(settings):
    settings.WEBHOOK_HANDLE_IN_WORKER = True


@pytest.fixture
def sent(client):
    """An outbound message of ours, sent (Meta named it), to the module's customer."""
    number = BusinessNumberFactory(phone_number_id=payloads.PHONE_NUMBER_ID, waba_id=payloads.WABA_ID)
    rate_cards_load(document=json.loads(RATE_CARDS_FIXTURE.read_text()))
    contact = ContactFactory(wa_id=payloads.CUSTOMER)
    return Message.objects.create(
        business_number=number, contact=contact, direction="outbound", message_type="text", text="Hi",
        request={"type": "text"}, status="sent", wa_message_id="wamid.campaign1", idempotency_key="k-1",
    )  # fmt: skip


def test_a_status_is_stored_by_the_request_and_applied_once_by_the_worker(client, sent):
    delivered = payloads.message_status("delivered", "wamid.campaign1")

    assert post_webhook(client, delivered).status_code == 200
    assert post_webhook(client, delivered).status_code == 200  # Meta's retry
    read = payloads.message_status("read", "wamid.campaign1")
    assert post_webhook(client, read).status_code == 200

    events = WebhookEvent.objects.filter(kind="message.status")
    assert sorted(events.values_list("status", flat=True)) == ["queued", "queued"]
    sent.refresh_from_db()
    assert sent.status == "sent" and not Charge.objects.exists()

    assert services.webhook_events_handle_queued() == 2
    assert services.webhook_events_handle_queued() == 0  # nothing twice

    sent.refresh_from_db()
    assert sent.status == "read" and sent.delivered_at is not None
    assert Charge.objects.filter(reference="wamid.campaign1").count() == 1
    assert set(events.values_list("status", "attempts")) == {("handled", 1)}


def test_a_call_is_still_handled_in_the_request(client):
    BusinessNumberFactory(phone_number_id=payloads.PHONE_NUMBER_ID, waba_id=payloads.WABA_ID)

    assert post_webhook(client, payloads.user_call_connect("wacid.now")).status_code == 200

    assert Call.objects.filter(wa_call_id="wacid.now").exists()
    assert WebhookEvent.objects.get(kind="call.connect").status == "handled"


def test_a_worker_that_dies_half_way_applies_nothing_and_the_next_batch_applies_it_once(
    client, sent, monkeypatch
):
    post_webhook(client, payloads.message_status("delivered", "wamid.campaign1"))
    applied = services._handle_in_order

    def apply_then_die(stored):
        applied(stored)
        raise SystemExit("the worker was killed")

    monkeypatch.setattr(services, "_handle_in_order", apply_then_die)
    with pytest.raises(SystemExit):
        services.webhook_events_handle_queued()
    sent.refresh_from_db()
    assert sent.status == "sent" and not Charge.objects.exists()
    assert WebhookEvent.objects.get(kind="message.status").status == "queued"

    monkeypatch.setattr(services, "_handle_in_order", applied)
    assert services.webhook_events_handle_queued() == 1
    sent.refresh_from_db()
    assert sent.status == "delivered" and Charge.objects.count() == 1


def test_the_worker_handles_what_was_queued_when_it_started_and_what_came_since_waits_for_its_nudge(
    client, sent, monkeypatch, django_capture_on_commit_callbacks
):
    post_webhook(client, payloads.message_status("delivered", "wamid.campaign1"))
    handle = services.webhook_events_handle_queued
    came_since = []  # what its delivery's commit does

    def handle_while_another_comes(**batch):
        if not came_since:  # stored while the task is on its first batch: the nudge's key is gone
            with django_capture_on_commit_callbacks(execute=False) as callbacks:
                post_webhook(client, payloads.message_status("read", "wamid.campaign1"))
            came_since.extend(callbacks)
        return handle(**batch)

    monkeypatch.setattr(services, "webhook_events_handle_queued", handle_while_another_comes)
    assert services.webhook_events_drain_queued() == 1  # not 2: the read waits to gather with others
    sent.refresh_from_db()
    assert sent.status == "delivered" and WebhookEvent.objects.filter(status="queued").count() == 1
    # Its delivery nudged the worker (the task it starts a moment later handles it).
    assert services._worker_nudge in came_since
    monkeypatch.setattr(services, "webhook_events_handle_queued", handle)
    assert services.webhook_events_drain_queued() == 1
    sent.refresh_from_db()
    assert sent.status == "read"


@pytest.fixture
def told(monkeypatch) -> list[tuple[dict, float | None]]:
    """The worker's tasks the web process starts (their arguments and countdown), none sent; the
    nudges' keys cleared before and after."""
    from whatsapp.tasks import handle_queued_events

    started = []
    monkeypatch.setattr(
        handle_queued_events, "apply_async", lambda kwargs, countdown: started.append((kwargs, countdown))
    )
    services._nudge_cache().delete_many([services.NUDGE_KEY, services.NUDGE_NOW_KEY])
    yield started
    services._nudge_cache().delete_many([services.NUDGE_KEY, services.NUDGE_NOW_KEY])


def test_a_customers_message_starts_the_worker_at_once_and_a_campaigns_statuses_a_moment_later(
    client, sent, told, django_capture_on_commit_callbacks
):

    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(client, payloads.message_status("delivered", "wamid.campaign1"))
        post_webhook(client, payloads.message_status("read", "wamid.campaign1"))  # the same task takes it
        post_webhook(client, payloads.text_message("wamid.hello"))  # waited for on an agent's screen
        post_webhook(client, payloads.text_message("wamid.again"))  # its task has not started yet

    assert told == [({}, services.QUEUED_GATHER_S), ({"is_at_once": True}, None)]
    # The task at once takes the messages; the statuses gather for theirs.
    assert services.webhook_events_drain_queued(is_at_once=True) == 2
    assert Message.objects.filter(direction="inbound").count() == 2
    assert list(WebhookEvent.objects.filter(status="queued").values_list("kind", flat=True)) == [
        "message.status",
        "message.status",
    ]
    assert services.webhook_events_drain_queued() == 2


def test_a_delivery_of_a_status_and_a_message_together_starts_both_tasks(
    client, sent, told, django_capture_on_commit_callbacks
):
    both = payloads.message_status("delivered", "wamid.campaign1")
    both["entry"][0]["changes"].append(payloads.text_message("wamid.hello")["entry"][0]["changes"][0])

    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(client, both)

    assert sorted(told, key=str) == sorted(
        [({}, services.QUEUED_GATHER_S), ({"is_at_once": True}, None)], key=str
    )
    assert services.webhook_events_drain_queued(is_at_once=True) == 1  # the message
    assert services.webhook_events_drain_queued() == 1  # the status, by its own task


def test_the_sweep_handles_queued_events_the_worker_was_never_told_of(client, sent):
    post_webhook(client, payloads.message_status("delivered", "wamid.campaign1"))

    services.webhook_events_redispatch_stale()

    sent.refresh_from_db()
    assert sent.status == "delivered"
    assert WebhookEvent.objects.get(kind="message.status").status == "handled"


def test_a_failing_event_in_a_batch_fails_alone(client, sent, monkeypatch):
    from whatsapp import dispatch

    post_webhook(client, payloads.message_status("delivered", "wamid.campaign1"))
    post_webhook(client, payloads.text_message("wamid.in1"))
    monkeypatch.setitem(dispatch._handlers, "message.received", lambda event: 1 / 0)

    assert services.webhook_events_handle_queued() == 1  # the statuses' run; the message alone
    assert services.webhook_events_drain_queued() == 1

    statuses = dict(WebhookEvent.objects.values_list("kind", "status"))
    assert statuses == {"message.status": "handled", "message.received": "failed"}
    sent.refresh_from_db()
    assert sent.status == "delivered"


def test_a_batch_of_many_statuses_does_what_each_would_do_alone(client, sent, monkeypatch):
    from whatsapp import dispatch

    second = Message.objects.create(
        business_number=sent.business_number, contact=sent.contact, direction="outbound",
        message_type="text", text="Hi", request={"type": "text"}, status="sent",
        wa_message_id="wamid.campaign2", idempotency_key="k-2",
    )  # fmt: skip
    failing = [{"code": 131026, "title": "Message undeliverable"}]
    for payload in (
        payloads.message_status("read", "wamid.campaign1"),  # `read` before `delivered`
        payloads.message_status("delivered", "wamid.campaign1"),
        payloads.message_status("delivered", "wamid.campaign2"),
        payloads.message_status("failed", "wamid.campaign2", errors=failing),  # after delivered: kept
        payloads.message_status("delivered", "wamid.not-ours"),
    ):
        assert post_webhook(client, payload).status_code == 200

    # The batch's handler of many does it all: had it failed, the one-event handler would fail too.
    monkeypatch.setitem(dispatch._handlers, "message.status", lambda event: 1 / 0)
    assert services.webhook_events_handle_queued() == 5

    sent.refresh_from_db()
    second.refresh_from_db()
    assert (sent.status, second.status) == ("read", "delivered")
    assert sent.delivered_at is not None and sent.read_at is not None
    # Meta charges a delivered message whether or not its send was recorded here (one at a time too).
    charged = sorted(Charge.objects.values_list("reference", flat=True))
    assert charged == ["wamid.campaign1", "wamid.campaign2", "wamid.not-ours"]
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"handled"}


SENT_AT = 1750263773  # a status's time, and the two seconds after it


def _campaign_statuses_handled(client, sent, count: int) -> int:
    """`count` more messages of a campaign (Indian and British customers), each `delivered` then
    `read`, handled by the worker in one batch: the statements that took."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    customers = {"919876543210": ContactFactory(wa_id="919876543210"), "447700900123": sent.contact}
    for index in range(count):
        wa_id = list(customers)[index % 2]
        Message.objects.create(
            business_number=sent.business_number, contact=customers[wa_id], direction="outbound",
            message_type="template", text="Sale", request={"type": "template"}, status="sent",
            wa_message_id=f"wamid.batch{count}-{index}", idempotency_key=f"batch{count}-{index}",
        )  # fmt: skip
        for state in ("delivered", "read"):
            payload = payloads.message_status(state, f"wamid.batch{count}-{index}")
            item = payload["entry"][0]["changes"][0]["value"]["statuses"][0]
            item["recipient_id"], item["timestamp"] = wa_id, str(SENT_AT + index % 3)
            assert post_webhook(client, payload).status_code == 200
    # The CRM's webhook subscriptions are read at most every 5 s (integrations.webhooks): both
    # batches read them, however long the posting above took.
    subscriptions_changed()
    with CaptureQueriesContext(connection) as queries:
        assert services.webhook_events_handle_queued() == 2 * count
    return len(queries)


def test_a_campaigns_statuses_are_charged_in_as_many_statements_for_forty_messages_as_for_two(client, sent):
    for market, price in (("IN", "0.0107"), ("GB", "0.0529")):
        rate_card_save(
            rate=RateCard(category="marketing", market=market, price=Money(price, "USD"),
                          effective_from=datetime.date(2025, 1, 1))
        )  # fmt: skip
    two = _campaign_statuses_handled(client, sent, 2)
    forty = _campaign_statuses_handled(client, sent, 40)

    assert forty <= two  # not a few more for each message
    charges = Charge.objects.filter(reference__startswith="wamid.batch40-")
    assert charges.count() == 40  # once each, however many of its statuses came
    # Each message delivered and read at its own statuses' time, however many share it.
    times = Message.objects.filter(wa_message_id__startswith="wamid.batch40-").values_list(
        "wa_message_id", "delivered_at", "read_at"
    )
    assert {
        (message_id, int(delivered.timestamp()), int(read.timestamp()))
        for message_id, delivered, read in times
    } == {(f"wamid.batch40-{index}", SENT_AT + index % 3, SENT_AT + index % 3) for index in range(40)}
    # Each priced by its customer's country's rate: India's and the United Kingdom's.
    assert {(charge.country, charge.amount) for charge in charges} == {
        ("IN", Money("0.0107", "USD")),
        ("GB", Money("0.0529", "USD")),
    }
