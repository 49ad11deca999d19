"""Deliveries received together (group commit): the same outcome as each alone, in fewer transactions."""

import asyncio
import json
import threading

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from django.db import connection, transaction

from config.asgi import application
from core.locks import transaction_lock
from whatsapp import dispatch, intake
from whatsapp.models import WebhookDelivery, WebhookEvent
from whatsapp.services import RECEIPT_TURN, webhook_deliveries_receive
from whatsapp.tests import payloads
from whatsapp.tests.conftest import sign


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
    """The size of each batch the intake receives from now on, deliveries that joined it included."""
    sizes = []

    def counting(*, bodies, take_more):
        def counting_more():
            more = take_more()
            sizes[-1] += len(more)
            return more

        sizes.append(len(bodies))
        return webhook_deliveries_receive(bodies=bodies, take_more=counting_more)

    monkeypatch.setattr(intake, "webhook_deliveries_receive", counting)
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
def test_deliveries_arriving_while_a_batch_waits_for_its_turn_join_it(monkeypatch):
    batches = batch_sizes(monkeypatch)
    turn_taken, writing_done = threading.Event(), threading.Event()

    def another_process_writing_its_batch():
        with transaction.atomic():
            transaction_lock(RECEIPT_TURN)
            turn_taken.set()
            writing_done.wait(10)
        connection.close()

    writer = threading.Thread(target=another_process_writing_its_batch)
    writer.start()
    assert turn_taken.wait(5)
    bodies = [body_of(payloads.text_message(f"wamid.turn-{index}")) for index in range(5)]

    async def burst():
        first = asyncio.ensure_future(post(bodies[0]))
        await asyncio.sleep(0.3)  # its batch (of one) waits for the turn
        rest = [asyncio.ensure_future(post(body)) for body in bodies[1:]]
        await asyncio.sleep(0.3)
        writing_done.set()
        return await asyncio.gather(first, *rest)

    responses = async_to_sync(burst)()
    writer.join()

    assert [response["status"] for response in responses] == [200] * 5
    assert batches == [5]
    assert WebhookEvent.objects.filter(kind="message.received").count() == 5
