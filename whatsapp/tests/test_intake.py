"""Deliveries received together (group commit): the same outcome as each alone, in fewer transactions."""

import asyncio
import json
import threading
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from django.db import connection, transaction
from django.utils import timezone

from config.asgi import application
from core.locks import transaction_lock
from whatsapp import dispatch, intake
from whatsapp.models import WebhookDelivery, WebhookEvent
from whatsapp.services import (
    DISPATCH_LEASE,
    RECEIPT_TURN,
    webhook_deliveries_receive,
    webhook_deliveries_store,
    webhook_events_handle_claimed,
    webhook_events_redispatch_stale,
)
from whatsapp.tests import payloads
from whatsapp.tests.conftest import sign, wait_until_handled


def body_of(payload: dict) -> bytes:
    return json.dumps(payload).encode()


@pytest.mark.django_db
def test_deliveries_together_have_each_the_outcome_it_has_alone(captured):
    connect = body_of(payloads.user_call_connect("wacid.one"))
    bodies = [
        connect,
        b'{"object": ',  # not JSON
        connect,  # Meta's redelivery, in the same breath
        body_of(payloads.text_message("wamid.two")),
        body_of(payloads.unknown_field()),
    ]

    outcomes = webhook_deliveries_receive(bodies=bodies)

    assert [outcome.is_accepted for outcome in outcomes] == [True, False, True, True, True]
    assert [len(outcome.new_events) for outcome in outcomes] == [1, 0, 0, 1, 1]
    assert outcomes[2].delivery.duplicate_count == 1
    assert outcomes[1].delivery.status == WebhookDelivery.Status.MALFORMED
    assert [event.kind for event in captured] == ["call.connect", "message.received", "unsupported"]
    assert WebhookEvent.objects.filter(idempotency_key="call:wacid.one:connect").count() == 1


@pytest.mark.django_db
def test_calls_events_go_to_the_handler_of_many_by_kind_each_calls_own_in_arrival_order(captured):
    dispatch._many_handlers["call.connect"] = lambda events: captured.append(
        ("connects", [event.call_id for event in events])
    )
    bodies = [
        body_of(payloads.user_call_connect("wacid.a")),
        body_of(payloads.user_call_connect("wacid.b")),
        body_of(payloads.call_terminate("wacid.a")),
        body_of(payloads.call_terminate("wacid.c")),  # before its connect: stays before it
        body_of(payloads.user_call_connect("wacid.c")),
        body_of(payloads.user_call_connect("wacid.d")),
        body_of(payloads.text_message("wamid.between")),  # no call's event moves past a message
        body_of(payloads.user_call_connect("wacid.e")),
        body_of(payloads.user_call_connect("wacid.f")),
    ]

    webhook_deliveries_receive(bodies=bodies)

    # wacid.c's connect goes alone, after its terminate.
    handled = [entry if isinstance(entry, tuple) else (entry.kind, getattr(entry, "call_id", None))
               for entry in captured]  # fmt: skip
    assert handled == [
        ("connects", ["wacid.a", "wacid.b", "wacid.d"]),
        ("call.terminate", "wacid.c"),
        ("connects", ["wacid.c"]),
        ("call.terminate", "wacid.a"),
        ("message.received", None),
        ("connects", ["wacid.e", "wacid.f"]),
    ]


@pytest.mark.django_db
def test_a_failing_handler_of_many_leaves_each_event_to_the_one_event_handler(captured):
    def broken(events):
        raise RuntimeError("bulk insert failed")

    dispatch._many_handlers["call.connect"] = broken
    dispatch._handlers["call.connect"] = lambda event: 1 / 0 if event.call_id == "wacid.bad" else None
    bodies = [body_of(payloads.user_call_connect(call_id)) for call_id in ("wacid.good", "wacid.bad")]

    webhook_deliveries_receive(bodies=bodies)

    statuses = dict(WebhookEvent.objects.values_list("idempotency_key", "status"))
    assert statuses == {"call:wacid.good:connect": "handled", "call:wacid.bad:connect": "failed"}


@pytest.mark.django_db
def test_an_event_alone_takes_the_handler_of_many_as_its_own_handler(captured):
    def many(events):
        if [event.call_id for event in events] == ["wacid.bad"]:
            raise RuntimeError("this call's connect is broken")

    dispatch._many_handlers["call.connect"] = many
    bodies = [
        body_of(payloads.user_call_connect("wacid.good")),
        body_of(payloads.text_message("wamid.between")),
        body_of(payloads.user_call_connect("wacid.bad")),
    ]

    webhook_deliveries_receive(bodies=bodies)

    events = WebhookEvent.objects.filter(kind="call.connect")
    assert dict(events.values_list("idempotency_key", "status")) == {
        "call:wacid.good:connect": "handled",
        "call:wacid.bad:connect": "failed",
    }
    assert events.get(status="failed").error == "RuntimeError: this call's connect is broken"
    assert [event.kind for event in captured] == ["message.received"]  # not the one-event handler


async def post(body: bytes) -> dict:
    headers = [
        (b"host", b"testserver"),
        (b"content-type", b"application/json"),
        (b"x-hub-signature-256", sign(body).encode()),
    ]
    communicator = HttpCommunicator(application, "POST", "/webhooks/whatsapp/", body=body, headers=headers)
    return await communicator.get_response(timeout=30)


def batch_sizes(monkeypatch) -> list[int]:
    """The size of each batch the intake stores from now on, deliveries that joined it included."""
    sizes = []

    def counting(*, bodies, take_more):
        def counting_more():
            more = take_more()
            sizes[-1] += len(more)
            return more

        sizes.append(len(bodies))
        return webhook_deliveries_store(bodies=bodies, take_more=counting_more)

    monkeypatch.setattr(intake, "webhook_deliveries_store", counting)
    return sizes


@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_are_answered_each_and_stored_in_shared_transactions(monkeypatch):
    sizes = batch_sizes(monkeypatch)
    bodies = [body_of(payloads.text_message(f"wamid.{index}")) for index in range(30)] + [b"{]"]

    async def burst():
        return await asyncio.gather(*(post(body) for body in bodies))

    responses = async_to_sync(burst)()

    assert [response["status"] for response in responses] == [200] * 30 + [400]
    assert sum(sizes) == 31 and max(sizes) > 1
    assert WebhookEvent.objects.filter(kind="message.received").count() == 30
    assert WebhookDelivery.objects.filter(status=WebhookDelivery.Status.MALFORMED).count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite's one writer needs no turn to wait for")
@pytest.mark.django_db(transaction=True)
def test_events_claimed_while_a_batch_waits_for_its_turn_join_it_and_their_answers_do_not_wait(
    monkeypatch, captured
):
    handled_together = []

    def counting(claimed, *, take_more):
        def counting_more():
            more = take_more()
            handled_together.append(len(claimed) + len(more))
            return more

        return webhook_events_handle_claimed(claimed, take_more=counting_more)

    monkeypatch.setattr(intake, "webhook_events_handle_claimed", counting)
    turn_taken, writing_done = threading.Event(), threading.Event()

    def another_process_handling_its_batch():
        with transaction.atomic():
            transaction_lock(RECEIPT_TURN)
            turn_taken.set()
            writing_done.wait(10)
        connection.close()

    writer = threading.Thread(target=another_process_handling_its_batch)
    writer.start()
    assert turn_taken.wait(5)
    bodies = [body_of(payloads.user_call_connect(f"wacid.turn-{index}")) for index in range(5)]
    stored = WebhookEvent.objects.filter(kind="call.connect")

    try:
        # Each answered (stored) while the first batch still waits for the turn to handle them.
        responses = [async_to_sync(post)(body) for body in bodies]
        assert [response["status"] for response in responses] == [200] * 5
        assert list(stored.values_list("status", flat=True)) == ["processing"] * 5
    finally:
        writing_done.set()
        writer.join()
    wait_until_handled()

    assert handled_together == [5]
    assert list(stored.values_list("status", flat=True)) == ["handled"] * 5
    assert [event.call_id for event in captured] == [f"wacid.turn-{index}" for index in range(5)]


@pytest.mark.django_db
def test_claimed_events_left_by_a_process_that_died_are_handled_once_by_the_sweep(captured):
    # The web process answered 200 once the events were stored claimed, then died before handling
    # them: after the lease the sweep handles each once, and the process's handling, were it only
    # late, leaves them alone.
    bodies = [
        body_of(payloads.user_call_connect("wacid.orphan")),
        body_of(payloads.text_message("wamid.orphan")),
    ]
    outcomes, claimed = webhook_deliveries_store(bodies=bodies)
    assert [len(outcome.new_events) for outcome in outcomes] == [1, 1]
    assert [event.kind for event, _ in claimed] == ["call.connect", "message.received"]
    assert not captured
    WebhookEvent.objects.update(last_attempt_at=timezone.now() - DISPATCH_LEASE - timedelta(seconds=1))

    webhook_events_redispatch_stale()

    assert [event.kind for event in captured] == ["call.connect", "message.received"]
    assert set(WebhookEvent.objects.values_list("status", "attempts")) == {("handled", 2)}
    assert webhook_events_handle_claimed(claimed) == 0
    assert len(captured) == 2


@pytest.mark.django_db
def test_claimed_events_are_handled_as_received_ones_are(captured):
    webhook_deliveries_store(bodies=[body_of(payloads.text_message("wamid.first"))])
    outcomes, claimed = webhook_deliveries_store(
        bodies=[
            body_of(payloads.user_call_connect("wacid.claimed")),
            body_of(payloads.text_message("wamid.first")),  # Meta's redelivery: a duplicate
            body_of(payloads.call_terminate("wacid.claimed")),
        ]
    )
    assert [(len(outcome.new_events), outcome.delivery.duplicate_count) for outcome in outcomes] == [
        (1, 0), (0, 1), (1, 0)
    ]  # fmt: skip
    later = [(event, record) for event, record in claimed if event.kind == "call.terminate"]
    claimed = [(event, record) for event, record in claimed if event.kind != "call.terminate"]

    assert webhook_events_handle_claimed(claimed, take_more=lambda: later) == 2

    assert [event.kind for event in captured] == ["call.connect", "call.terminate"]
    assert set(WebhookEvent.objects.filter(kind__startswith="call.").values_list("status", "attempts")) == {
        ("handled", 1)
    }
    assert WebhookEvent.objects.get(kind="message.received").status == "processing"  # claimed elsewhere
