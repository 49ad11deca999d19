"""Meta's POSTs through the web server's application: the short way past Django's middleware
(whatsapp.asgi) answers exactly as the Django view does, and hands its database connections back."""

import json
import threading

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator

from config.asgi import application
from whatsapp import intake
from whatsapp.models import WebhookDelivery, WebhookEvent
from whatsapp.tests import payloads
from whatsapp.tests.conftest import sign, wait_until_handled
from whatsapp.tests.test_intake import body_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("captured")]


def post(body: bytes, *, signature: str | None = None) -> dict:
    headers = [(b"host", b"testserver"), (b"content-type", b"application/json")]
    headers.append((b"x-hub-signature-256", (signature if signature is not None else sign(body)).encode()))
    communicator = HttpCommunicator(application, "POST", "/webhooks/whatsapp/", body=body, headers=headers)
    return async_to_sync(communicator.get_response)(timeout=30)


def answer_of(response: dict) -> tuple[int, dict]:
    return response["status"], json.loads(response["body"])


def test_a_delivery_and_its_redelivery_are_answered_as_the_django_view_answers(client):
    body = body_of(payloads.user_call_connect("wacid.asgi"))

    first, again = post(body), post(body)
    through_django = client.post(
        "/webhooks/whatsapp/", body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=sign(body)
    )

    assert answer_of(first) == (200, {"received": 1, "duplicates": 0})
    assert answer_of(again) == (200, {"received": 0, "duplicates": 1})
    assert (through_django.status_code, through_django.json()) == (200, {"received": 0, "duplicates": 1})
    assert dict(first["headers"])[b"x-content-type-options"] == b"nosniff"
    assert WebhookEvent.objects.filter(idempotency_key="call:wacid.asgi:connect").count() == 1


@pytest.mark.parametrize(
    ("body", "signature", "status"),
    [
        (body_of(payloads.user_call_connect("wacid.forged")), "sha256=" + "0" * 64, 403),
        (body_of(payloads.user_call_connect("wacid.unsigned")), "", 403),
        (b'{"object": ', None, 400),
    ],
)
def test_bad_deliveries_are_refused_as_the_django_view_refuses_them(client, body, signature, status):
    header = sign(body) if signature is None else signature

    response = post(body, signature=header)
    through_django = client.post(
        "/webhooks/whatsapp/", body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=header
    )

    assert answer_of(response) == (through_django.status_code, through_django.json())
    assert response["status"] == status
    assert not WebhookEvent.objects.exists()


def test_a_delivery_beyond_the_size_limit_is_refused_unread(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = body_of(payloads.user_call_connect("wacid.big", **{"from": "447700900123"})) + b" " * 1000

    response = post(body)

    assert answer_of(response) == (413, {"error": "the delivery is too large"})
    assert not WebhookDelivery.objects.exists()


def test_a_delivery_that_cannot_be_stored_is_answered_500_for_meta_to_deliver_again(monkeypatch):
    def broken(*, bodies, take_more):
        raise OSError("the database went away")

    monkeypatch.setattr(intake, "webhook_deliveries_store", broken)

    response = post(body_of(payloads.user_call_connect("wacid.lost")))

    assert response["status"] == 500
    assert not WebhookDelivery.objects.exists()


def test_each_delivery_hands_its_database_connection_back():
    # On PostgreSQL the web process borrows from a pool of DATABASE_POOL_SIZE (10) connections: a
    # request that kept its connection would leave the eleventh waiting, then failing.
    bodies = [body_of(payloads.text_message(f"wamid.pool-{index}")) for index in range(14)]

    statuses = [post(body)["status"] for body in bodies]

    assert statuses == [200] * 14
    assert WebhookEvent.objects.filter(kind="message.received").count() == 14


def test_the_verification_handshake_still_goes_to_django(settings):
    query = f"hub.mode=subscribe&hub.challenge=42&hub.verify_token={settings.WHATSAPP_VERIFY_TOKEN}"
    communicator = HttpCommunicator(
        application, "GET", f"/webhooks/whatsapp/?{query}", headers=[(b"host", b"testserver")]
    )

    response = async_to_sync(communicator.get_response)(timeout=30)

    assert (response["status"], response["body"]) == (200, b"42")


def test_deliveries_are_received_in_one_long_lived_thread_a_lane_and_handled_in_another(
    monkeypatch, captured
):
    # Not a thread started (and joined) for each POST, as Django's request handling would.
    threads, handling_threads = [], []
    store, handle = intake.webhook_deliveries_store, intake.webhook_events_handle_claimed

    def noting_the_thread(*, bodies, take_more):
        threads.append(threading.current_thread())
        return store(bodies=bodies, take_more=take_more)

    def noting_the_handling_thread(claimed, *, take_more):
        handling_threads.append(threading.current_thread())
        return handle(claimed, take_more=take_more)

    monkeypatch.setattr(intake, "webhook_deliveries_store", noting_the_thread)
    monkeypatch.setattr(intake, "webhook_events_handle_claimed", noting_the_handling_thread)

    statuses = [post(body_of(payloads.text_message(f"wamid.thread-{index}")))["status"] for index in range(4)]

    assert statuses == [200] * 4
    assert len(set(threads)) == 1
    assert threads[0].name.startswith("webhook-storer")

    threads.clear()
    calls = [
        post(body_of(payloads.user_call_connect(f"wacid.thread-{index}")))["status"] for index in range(2)
    ]
    assert calls == [200] * 2
    assert len(set(threads)) == 1
    assert threads[0].name.startswith("webhook-receiver")
    wait_until_handled()
    assert len(set(handling_threads)) == 1
    assert handling_threads[0].name.startswith("webhook-handler")
    assert [event.kind for event in captured] == ["message.received"] * 4 + ["call.connect"] * 2


def test_a_call_is_received_while_a_batch_of_statuses_is_still_being_stored(monkeypatch):
    storing, release = threading.Event(), threading.Event()
    store = intake.webhook_deliveries_store

    def slow_for_statuses(*, bodies, take_more):
        if b'"statuses"' in bodies[0]:
            storing.set()
            assert release.wait(timeout=30)
        return store(bodies=bodies, take_more=take_more)

    monkeypatch.setattr(intake, "webhook_deliveries_store", slow_for_statuses)
    status_answer = []
    status = threading.Thread(
        target=lambda: status_answer.append(post(body_of(payloads.message_status("delivered")))["status"])
    )
    status.start()
    try:
        assert storing.wait(timeout=30)
        assert post(body_of(payloads.user_call_connect("wacid.not-behind")))["status"] == 200
        assert not status_answer  # the statuses' batch is still being stored
    finally:
        release.set()
        status.join(timeout=30)
    assert status_answer == [200]


def test_a_call_is_answered_once_stored_and_handled_right_after(monkeypatch, captured):
    # Meta's answer does not wait for the call's handler (queue, ring): a 200 says it is stored,
    # claimed by this process, which handles it next, in its handling thread.
    handling, release = threading.Event(), threading.Event()
    handle = intake.webhook_events_handle_claimed

    def held(claimed, *, take_more):
        handling.set()
        assert release.wait(timeout=30)
        return handle(claimed, take_more=take_more)

    monkeypatch.setattr(intake, "webhook_events_handle_claimed", held)

    try:
        response = post(body_of(payloads.user_call_connect("wacid.answered-first")))
        assert answer_of(response) == (200, {"received": 1, "duplicates": 0})
        assert handling.wait(timeout=30)
        event = WebhookEvent.objects.get(idempotency_key="call:wacid.answered-first:connect")
        assert (event.status, event.attempts, event.handled_at) == ("processing", 1, None)
        assert not captured
    finally:
        release.set()
    wait_until_handled()

    event.refresh_from_db()
    assert event.status == "handled" and event.handled_at is not None
    assert [event.call_id for event in captured] == ["wacid.answered-first"]
